"""The flow language as typed models.

A flow file holds one flow (top-level `id`, `steps` …) or several under `flows:`. Each step is a
mapping with exactly one step key (`say`, `ask`, `if` …) plus options. The same models produce the
published JSON Schema (`carebot schema`), so editors and `carebot validate` agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


StepId = str | None
Steps = list["Step"]

# ---------------------------------------------------------------------------------------------
# Triggers


class CommandTrigger(Model):
    command: str = Field(pattern=r"^/[A-Za-z0-9_]+$", description="A slash command, e.g. /start")


class KeywordTrigger(Model):
    keyword: list[str] = Field(min_length=1, description="Words in any locale (zh and en).")
    match: Literal["exact", "first_word", "whole_word"] = Field(
        "whole_word",
        description="exact: the whole message; first_word: the message starts with it; "
        "whole_word: it appears as a word anywhere (for Chinese: anywhere in the text). "
        "While a flow is waiting for an answer only an exact match interrupts it.",
    )


class ButtonTrigger(Model):
    button: str = Field(description="A button payload value that starts this flow.")


class TimerTrigger(Model):
    timer: str = Field(description="A timer name; when it fires this flow runs.")


class EventTrigger(Model):
    event: Literal["join", "leave", "first_contact", "handoff_closed"]




def trigger_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((k for k in value if k in TRIGGER_MODELS), None)
    return next((k for k, t in TRIGGER_MODELS.items() if isinstance(value, t)), None)


TRIGGER_MODELS: dict[str, type[Model]] = {
    "command": CommandTrigger, "keyword": KeywordTrigger, "button": ButtonTrigger,
    "timer": TimerTrigger, "event": EventTrigger,
}

Trigger = Annotated[
    Union[tuple(Annotated[t, Tag(k)] for k, t in TRIGGER_MODELS.items())],  # type: ignore[misc]
    Discriminator(trigger_kind),
]

# ---------------------------------------------------------------------------------------------
# Steps. Every step may carry an `id` (a label for goto and for error messages).


class ButtonSpec(Model):
    label: str = Field(description="Content key of the button text.")
    value: str = Field(description="Payload sent back when pressed.")


class SayBody(Model):
    key: str = Field(description="Content key, e.g. intake.welcome")
    buttons: list[ButtonSpec] = []
    media: str | None = Field(None, description="Image URL or template")
    vars: dict[str, Any] = {}


class SayStep(Model):
    id: StepId = None
    say: str | SayBody


class Choice(Model):
    value: str
    label: str = Field(description="Content key of the choice text (shown as a button).")
    match: list[str] = Field([], description="Extra words that pick this choice, any locale.")


class Validation(Model):
    min: float | str | None = Field(None, description="number: minimum; date: 'today' or ISO date")
    max: float | str | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = Field(None, description="A regular expression the text must match.")
    integer: bool = False


AskType = Literal["text", "choice", "number", "scale", "yes_no", "date", "time", "datetime", "media"]


class AskBody(Model):
    key: str = Field(description="Content key of the question.")
    slot: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: AskType = "text"
    choices: list[Choice] = []
    validate_: Validation = Field(Validation(), alias="validate")
    retries: int = Field(2, ge=0, le=10, description="Re-asks after an invalid answer.")
    invalid: str | None = Field(None, description="Content key said when an answer is invalid.")
    on_fail: Steps | None = Field(None, description="Steps when retries run out (default: offer a human).")
    optional: bool = Field(False, description="The patient may skip (跳过 / skip).")
    exact: bool = Field(False, description="Only a button, a yes/no word or an option's name counts: typed "
                        "answers are not interpreted (content/understand). For consent and erasure.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AskStep(Model):
    id: StepId = None
    ask: AskBody


class SetStep(Model):
    id: StepId = None
    set: dict[str, Any] = Field(
        description="slot: value. A value that is exactly '{{ expr }}' keeps the expression's type; "
        "other strings are templates; numbers, booleans and null are literal. "
        "The key `locale` switches the conversation's language."
    )


class ClearStep(Model):
    id: StepId = None
    clear: list[str] | Literal["all"]
    keep: list[str] = Field([], description="With `clear: all`: slots to keep (e.g. consent).")


class IfStep(Model):
    id: StepId = None
    if_: str = Field(alias="if", description="A condition, e.g. need == 'quick'")
    then: Steps = []
    else_: Steps = Field([], alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SwitchStep(Model):
    id: StepId = None
    switch: str = Field(description="An expression whose value picks a case.")
    cases: dict[str, Steps]
    default: Steps = []


class CallStep(Model):
    id: StepId = None
    call: str = Field(description="Flow id to run; this flow continues when it ends.")


class GotoStep(Model):
    id: StepId = None
    goto: str = Field(description="A step id in this flow.")


class LinkStep(Model):
    id: StepId = None
    link: str = Field(description="A flow id that replaces this flow.")


class ActionBody(Model):
    name: str
    args: dict[str, Any] = {}
    on_error: Steps | None = None


class ActionStep(Model):
    id: StepId = None
    action: str | ActionBody


class HandoffBody(Model):
    department: str = Field("", description="Department id or a template.")
    priority: str = Field("normal", description="normal | high | urgent, or a template.")
    reason: str = ""
    say: str | None = Field("handoff.opened", description="Content key told to the patient.")


class HandoffStep(Model):
    id: StepId = None
    handoff: HandoffBody | None = None


class ScheduleBody(Model):
    timer: str
    in_: str | None = Field(None, alias="in", description="A duration: 30s, 10m, 2h, 1d, 1w, 1h30m")
    at: str | None = Field(None, description="An expression giving an ISO date-time.")
    flow: str | None = Field(None, description="Flow to run when it fires.")
    payload: dict[str, Any] = {}

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ScheduleStep(Model):
    id: StepId = None
    schedule: ScheduleBody


class CancelStep(Model):
    id: StepId = None
    cancel: str = Field(description="Timer name to cancel.")


class TagStep(Model):
    id: StepId = None
    tag: list[str]


class UntagStep(Model):
    id: StepId = None
    untag: list[str]


class WaitBody(Model):
    timeout: str = Field(description="A duration, e.g. 2h")
    slot: str | None = Field(None, description="Slot that receives the reply, if one comes.")
    on_timeout: Steps = []


class WaitStep(Model):
    id: StepId = None
    wait: WaitBody


class SurveyQuestion(Model):
    id: str
    ask: str = Field(description="Content key of the question.")
    type: Literal["scale", "choice", "text", "yes_no"] = "scale"
    min: int = 0
    max: int = 10
    choices: list[Choice] = []
    optional: bool = False


class SurveyBody(Model):
    id: str
    questions: list[SurveyQuestion] = Field(min_length=1)
    thanks: str | None = None


class SurveyStep(Model):
    id: StepId = None
    survey: SurveyBody


class RecordStep(Model):
    id: StepId = None
    record: str = Field(description="Event name appended to the conversation's records.")
    data: dict[str, Any] = {}


class ReturnStep(Model):
    id: StepId = None
    return_: bool = Field(True, alias="return", description="End this flow; the flow that called it goes on.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EndStep(Model):
    id: StepId = None
    end: str | bool = Field(True, description="true, or a content key said before ending.")


def step_kind(value: Any) -> str | None:
    """The step key a step mapping carries (`say`, `ask` …), for the tagged union below."""
    if isinstance(value, dict):
        for key in value:
            if key in STEP_MODELS:
                return key
        return None
    for key, model in STEP_MODELS.items():
        if isinstance(value, model):
            return key
    return None


# The key that names each step type, in the order listed to operators.
STEP_MODELS: dict[str, type[Model]] = {
    "say": SayStep, "ask": AskStep, "set": SetStep, "clear": ClearStep, "if": IfStep,
    "switch": SwitchStep, "call": CallStep, "goto": GotoStep, "link": LinkStep,
    "action": ActionStep, "handoff": HandoffStep, "schedule": ScheduleStep, "cancel": CancelStep,
    "tag": TagStep, "untag": UntagStep, "wait": WaitStep, "survey": SurveyStep,
    "record": RecordStep, "return": ReturnStep, "end": EndStep,
}

Step = Annotated[
    Union[tuple(Annotated[m, Tag(k)] for k, m in STEP_MODELS.items())],  # type: ignore[misc]
    Discriminator(step_kind),
]



class Flow(Model):
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    description: str = ""
    triggers: list[Trigger] = []
    interruptible: bool = Field(True, description="false: keywords never interrupt this flow.")
    takeover: bool = Field(
        False, description="true: when triggered, replace the running flows instead of pausing them."
    )
    priority: int = Field(0, description="Higher wins when two flows' keywords match.")
    during_handoff: bool = Field(
        False, description="true: its commands, buttons and exact keywords work while a human handles "
        "the thread (opt-out, forget me, revoke consent); other messages go to the doctor.")
    steps: Steps = Field(min_length=1)


class FlowFile(Model):
    """A file with several flows. A file may instead be a single Flow at top level."""

    flows: list[Flow]


for _m in (AskBody, IfStep, SwitchStep, ActionBody, WaitBody, Flow):
    _m.model_rebuild()
