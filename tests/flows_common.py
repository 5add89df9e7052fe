"""Small flows and messages the runtime tests share."""

ECHO_FLOWS = {
    "echo.yml": """
        id: echo
        triggers:
          - event: first_contact
          - command: /echo
        steps:
          - id: loop
            ask: { key: t.next, slot: last, type: text }
          - set: { seen: "{{ (seen or []) + [last] }}" }
          - say: t.echo
          - goto: loop
    """,
    "remind.yml": """
        id: remind
        triggers:
          - command: /remind
        steps:
          - schedule: { timer: pill, in: 2h, flow: pill }
          - say: t.scheduled
    """,
    "pill.yml": """
        id: pill
        steps:
          - record: pill_fired
          - say: t.pill
    """,
}

ECHO_MESSAGES = {
    "zh-CN": """
        t:
          next: 请说
          echo: "{{ last }}"
          scheduled: 已设置提醒
          pill: 该吃药了
    """,
    "en": """
        t:
          next: Go on
          echo: "{{ last }}"
          scheduled: Reminder set
          pill: Time for your pill
    """,
}
