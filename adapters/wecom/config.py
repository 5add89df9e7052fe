"""WeCom settings, from the environment. The adapter runs only when the corp id, the callback
Token and EncodingAESKey, and at least one secret are set (see docs/wecom.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bot.errors import ConfigError, ConfigProblem

API = "https://qyapi.weixin.qq.com"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _pairs(name: str) -> dict[str, str]:
    """`a:b,c:d` → {a: b, c: d}; a malformed item is a ConfigError naming it."""
    out: dict[str, str] = {}
    for item in filter(None, (i.strip() for i in _env(name).split(","))):
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError([ConfigProblem("environment", 0, name,
                                             f"{item!r} is not staff_id:wecom_userid (e.g. d_sun:SunLi)")])
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str = ""
    token: str = ""  # the callback Token (接收消息服务器配置)
    aes_key: str = ""  # the callback EncodingAESKey, 43 characters
    kf_secret: str = ""  # 微信客服 → API secret: the patient channel
    app_secret: str = ""  # the self-built app's secret: application messages and care-team groups
    agent_id: int = 0  # the self-built app's AgentId
    contact_secret: str = ""  # 客户联系 secret: welcome messages, tags, contact-me QR, customer groups
    open_kfid: str = ""  # the kf account patients write to (wk…)
    api_base: str = API
    staff: dict[str, str] = field(default_factory=dict)  # carebot staff id → WeCom userid
    care_team: tuple[str, ...] = ()  # WeCom userids in every patient's care team (nurse, health manager)
    handoff: str = "console"  # console: doctors answer in carebot's console; servicer: WeCom kf servicers
    tag_group: str = "carebot"  # the corp tag group carebot's tags live in
    member_rate: tuple[int, float] = (30, 61.0)  # application messages per member per seconds (WeCom: 30/min)
    timestamp_tolerance: float = 300.0  # seconds a callback's timestamp may be off
    console_url: str = ""  # where a textcard's button leads (the staff console)

    @property
    def enabled(self) -> bool:
        return bool(self.corp_id and self.token and self.aes_key and (self.kf_secret or self.app_secret
                                                                      or self.contact_secret))

    def userid(self, staff_id: str) -> str:
        """The WeCom userid of a carebot staff member (their id itself when not mapped)."""
        return self.staff.get(staff_id, staff_id)

    def staff_id(self, userid: str) -> str:
        return next((s for s, u in self.staff.items() if u == userid), userid)

    @classmethod
    def from_env(cls) -> WeComConfig:
        agent = _env("CAREBOT_WECOM_AGENT_ID", "0")
        if not agent.isdigit():
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_WECOM_AGENT_ID",
                                             f"{agent!r} is not the app's AgentId (a number, e.g. 1000002)")])
        handoff = _env("CAREBOT_WECOM_HANDOFF", "console")
        if handoff not in ("console", "servicer"):
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_WECOM_HANDOFF",
                                             f"{handoff!r} is not valid; use console or servicer")])
        config = cls(
            corp_id=_env("CAREBOT_WECOM_CORP_ID"), token=_env("CAREBOT_WECOM_TOKEN"),
            aes_key=_env("CAREBOT_WECOM_AES_KEY"), kf_secret=_env("CAREBOT_WECOM_KF_SECRET"),
            app_secret=_env("CAREBOT_WECOM_APP_SECRET"), agent_id=int(agent),
            contact_secret=_env("CAREBOT_WECOM_CONTACT_SECRET"), open_kfid=_env("CAREBOT_WECOM_OPEN_KFID"),
            api_base=_env("CAREBOT_WECOM_API", API).rstrip("/"), staff=_pairs("CAREBOT_WECOM_STAFF"),
            care_team=tuple(u.strip() for u in _env("CAREBOT_WECOM_CARE_TEAM").split(",") if u.strip()),
            handoff=handoff, tag_group=_env("CAREBOT_WECOM_TAG_GROUP", "carebot"),
            console_url=_env("CAREBOT_WECOM_CONSOLE_URL"))
        if config.corp_id and not config.enabled:
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_WECOM_TOKEN",
                                             "CAREBOT_WECOM_CORP_ID is set: also set CAREBOT_WECOM_TOKEN, "
                                             "CAREBOT_WECOM_AES_KEY and at least one secret (see docs/wecom.md)")])
        if config.kf_secret and not config.open_kfid:
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_WECOM_OPEN_KFID",
                                             "the kf secret is set: name the kf account (wk…) patients write to")])
        if config.app_secret and not config.agent_id:
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_WECOM_AGENT_ID",
                                             "the app secret is set: give the app's AgentId (e.g. 1000002)")])
        return config
