"""Hand-off to human doctors: tickets, dispatch (grab / roster / team), SLA clocks, quality review,
satisfaction and complaints. The staff console (adapters/console) is a view on this package."""
