"""Patient community groups: policies in YAML (`content/groups/`), the moderation stage, members'
captcha and welcome, the group's programme (SOP), the moderation log and the organisation's banlist.
See docs/groups.md."""
