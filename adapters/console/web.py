"""The console's request plumbing: who is asking (session cookie → staff member), in which language,
CSRF on every POST, rendering with Jinja2 (autoescape on), flashes, security headers.

A handler is `async def handler(ctx: Ctx) -> Response`, wrapped by `Web.page(...)`, which answers a
visitor without a session with the login page, a role outside `roles` with 403, and a POST without
the session's CSRF token (or from another origin) with 403, before the handler runs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.console import views
from adapters.console.i18n import LOCALES, STRINGS, translate
from adapters.console.session import COOKIE, IDLE, ConsoleSession, SessionSigner

if TYPE_CHECKING:
    from bot.app import CareBot
    from bot.handoff.staff import StaffMember
    from bot.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "carebot_console_lang"
FLASH_COOKIE = "carebot_console_flash"
PREFIX = "/console"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

Handler = Callable[["Ctx"], Awaitable[Response]]


class Refused(Exception):
    """The request may not do this (403), or asks for what is not there (404): answered with the message."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


@dataclass
class Ctx:
    """One request to the console, once its session has been read."""

    request: Request
    web: Web
    carebot: CareBot
    session: ConsoleSession
    locale: str
    staff: StaffMember | None = None
    cookie: str | None = None  # a new session cookie to set on the response
    flash: tuple[str, str] | None = None  # (kind, message) from the previous request
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.carebot.clock.now()

    @property
    def me(self) -> StaffMember:
        assert self.staff is not None
        return self.staff

    @property
    def actor(self) -> str:
        return f"staff:{self.staff.id}" if self.staff else "anonymous"

    def t(self, key: str, **values: Any) -> str:
        return translate(self.locale, key, **values)

    def csrf(self) -> str:
        return self.web.signer.csrf(self.session)

    async def audit(self, action: str, subject: str, detail: dict[str, Any] | None = None) -> None:
        await self.carebot.store.audit(self.now, self.actor, action, subject, detail)

    def department(self, department: str) -> str:
        """A department's name in the console's language (from the patient messages), or its id."""
        content = self.carebot.config.content
        if department and content.lookup(f"dept.{department}", self.locale) is not None:
            return content.render(f"dept.{department}", self.locale, {})
        if f"dept_{department}" in STRINGS:  # departments no patient picks (emergency)
            return self.t(f"dept_{department}")
        for rules in self.carebot.config.triage.values():  # the intake's lexicon names the others (心内科)
            for dept in rules.departments.departments:
                if dept.id == department and dept.names:
                    return dept.names.get(self.locale) or next(iter(dept.names.values()))
        return department or "—"

    def departments(self) -> list[str]:
        return list(self.carebot.config.handoff.departments)

    def every_department(self) -> list[str]:
        """The inbox filter's choices: handoff.yml's departments, then every one the intake can suggest
        (their tickets reach the default's backup, named by their own department)."""
        ids = dict.fromkeys(self.departments())
        for rules in self.carebot.config.triage.values():
            ids.update(dict.fromkeys(d.id for d in rules.departments.departments))
        return list(ids)

    # what a history line shows of its event's detail, in this order; people and departments by name
    EVENT_FIELDS = ("reason", "rung", "who", "channels", "to_department", "to_staff", "to", "widened_to",
                    "department", "mode", "assignee", "team", "level", "by", "seconds", "after", "clock",
                    "previous_assignee")
    PEOPLE = frozenset({"who", "to_staff", "previous_assignee", "assignee"})
    PLACES = frozenset({"to_department", "widened_to", "to", "department"})

    def event_detail(self, detail: Any, names: dict[str, str], kind: str = "") -> str:
        """A ticket event's detail as a short readable line ("reason: the patient withdrew the request ·
        also offered to: Internal medicine"), never raw JSON; empty when there is nothing to say."""
        try:
            data = json.loads(detail) if isinstance(detail, str) else dict(detail or {})
        except (ValueError, TypeError):
            return ""
        if not isinstance(data, dict):
            return ""
        parts = []
        for key in self.EVENT_FIELDS:
            value = data.get(key)
            if value in (None, "", [], {}) or (key == "department" and kind not in ("offered", "assigned")):
                continue
            if isinstance(value, list):
                shown = ", ".join(names.get(str(v), str(v)) for v in value)
            elif key in self.PEOPLE:
                shown = names.get(str(value), str(value))
            elif key in self.PLACES:
                shown = self.department(str(value)) if str(value) not in names else names[str(value)]
            else:
                text = str(value)
                for prefix in ("reason_", "rung_", "by_", "level_", "mode_"):
                    if f"{prefix}{text}" in STRINGS and key == prefix[:-1]:
                        text = self.t(f"{prefix}{text}")
                shown = text
            parts.append(f"{self.t('evd_' + key)}: {shown}")
        return " · ".join(parts)

    def when(self, moment: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        return moment.astimezone(self.web.tz).strftime(fmt) if moment else "—"

    def rel(self, moment: datetime | None) -> str:
        """"in 12 min" / "3 h ago" in the console's language."""
        if moment is None:
            return "—"
        seconds = (moment - self.now).total_seconds()
        minutes = abs(seconds) / 60
        if minutes < 90:
            amount = self.t("minutes", n=round(minutes))
        elif minutes < 48 * 60:
            amount = self.t("hours", n=round(minutes / 60))
        else:
            amount = self.t("days", n=round(minutes / 1440))
        return self.t("in_time", t=amount) if seconds >= 0 else self.t("ago", t=amount)

    def url(self, path: str = "", **query: Any) -> str:
        base = f"{PREFIX}{path}"
        pairs = [f"{k}={quote(str(v), safe='')}" for k, v in query.items() if v not in ("", None, False)]
        return f"{base}?{'&'.join(pairs)}" if pairs else base


class Web:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.signer = SessionSigner(settings.server_secret())
        self.tz = ZoneInfo(settings.timezone)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                      trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
        self.env.filters["pretty"] = _pretty

    # -- who is asking -----------------------------------------------------------------------------

    def locale_of(self, request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE, "")
        if chosen in LOCALES:
            return chosen
        first = request.headers.get("accept-language", "").split(",")[0].strip().lower()
        if first.startswith("zh"):
            return "zh-CN"
        if first.startswith("en"):
            return "en"
        return self.settings.base_locale if self.settings.base_locale in LOCALES else "zh-CN"

    async def context(self, request: Request) -> Ctx:
        carebot: CareBot = request.app.state.carebot
        now = carebot.clock.now().timestamp()
        session = self.signer.load(request.cookies.get(COOKIE), now)
        if session is not None and session.logged_in and await carebot.handoff.logins.revoked(
                session.nonce, carebot.clock.now()):
            session = None  # logged out (an anonymous session has nothing to revoke)
        ctx = Ctx(request, self, carebot, session or self.signer.new(now), self.locale_of(request))
        if session is None:
            ctx.cookie = self.signer.dump(ctx.session)
        else:
            touched = self.signer.touched(session, now)
            if touched is not None:
                ctx.session, ctx.cookie = touched, self.signer.dump(touched)
            if session.logged_in:
                ctx.staff = await carebot.store.read(lambda c: views.active_staff(c, session.staff_id))
        flash = request.cookies.get(FLASH_COOKIE, "")
        if flash:
            try:
                kind, message = json.loads(base64.urlsafe_b64decode(flash.encode()))
                ctx.flash = ("ok" if kind == "ok" else "error", str(message)[:300])
            except (ValueError, TypeError, RecursionError):
                ctx.flash = ("error", "")
        return ctx

    async def check_post(self, ctx: Ctx) -> FormData:
        """The form of a POST whose CSRF token belongs to this session and which came from our origin."""
        origin = ctx.request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != ctx.request.headers.get("host", ""):
            raise Refused(ctx.t("csrf_failed"))
        form = await ctx.request.form()
        if not self.signer.csrf_ok(ctx.session, str(form.get("csrf", ""))):
            raise Refused(ctx.t("csrf_failed"))
        return form

    # -- answering ---------------------------------------------------------------------------------

    def page(self, handler: Handler, *, roles: tuple[str, ...] = (),
             login: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = await self.context(request)
            if login and ctx.staff is None:
                if request.method == "GET" and request.headers.get("accept", "").startswith("text/event-stream"):
                    return self.finish(ctx, Response(status_code=401))
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return self.finish(ctx, RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", 303))
            try:
                if roles and ctx.me.role not in roles:
                    raise Refused(ctx.t("not_your_role"))
                if request.method == "POST":
                    ctx.values["form"] = await self.check_post(ctx)
                return self.finish(ctx, await handler(ctx))
            except Refused as exc:
                return self.finish(ctx, self.render(ctx, "error.html", code=exc.status, message=str(exc)))

        return endpoint

    def render(self, ctx: Ctx, template: str, *, code: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(c=ctx, t=ctx.t, **values)
        return HTMLResponse(html, status_code=code, headers=HEADERS)

    def redirect(self, ctx: Ctx, url: str, flash: tuple[str, str] | None = None) -> Response:
        response = RedirectResponse(url, status_code=303)
        if flash is not None:
            # base64: a cookie carries ASCII only, and the message may be Chinese
            value = base64.urlsafe_b64encode(json.dumps([flash[0], flash[1][:300]]).encode()).decode()
            response.set_cookie(FLASH_COOKIE, value, max_age=60, path=PREFIX, httponly=True, samesite="lax",
                                secure=self._secure(ctx.request))
        return response

    def finish(self, ctx: Ctx, response: Response) -> Response:
        """Set the renewed session cookie and spend the flash that was shown."""
        secure = self._secure(ctx.request)
        if ctx.cookie is not None:
            response.set_cookie(COOKIE, ctx.cookie, max_age=IDLE, path=PREFIX, httponly=True, samesite="lax",
                                secure=secure)
        sets_flash = any(k == b"set-cookie" and v.startswith(FLASH_COOKIE.encode()) for k, v in response.raw_headers)
        if ctx.flash is not None and not sets_flash:
            response.delete_cookie(FLASH_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=secure)
        return response

    @staticmethod
    def _secure(request: Request) -> bool:
        return request.url.scheme == "https"


def _pretty(value: Any) -> str:
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if value is None or value == "":
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(_pretty(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_pretty(v)}" for k, v in value.items())
    return str(value)
