"""rasa-sdk actions written exactly as for a Rasa action server; the tests run them unchanged."""
