"""A real rasa-sdk action server serving tests/rasa_actions, bound to loopback only.

`python -m rasa_sdk` binds 0.0.0.0; this builds the same app with `create_app` and runs it on
127.0.0.1. Usage: `python tests/rasa_server.py PORT`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rasa_sdk.endpoint import create_app  # noqa: E402
from rasa_sdk.executor import ActionExecutor  # noqa: E402


def main() -> None:
    executor = ActionExecutor()
    executor.register_package("tests.rasa_actions")
    app = create_app(executor)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, motd=False, access_log=False)


if __name__ == "__main__":
    main()
