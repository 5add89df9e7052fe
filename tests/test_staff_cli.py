"""`carebot staff …`: departments checked against content/handoff.yml, deactivation, password reset,
the list with roles, shifts and on call at a given time (`--at`: no test reads the wall clock)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.cli import main
from bot.clock import ManualClock
from bot.handoff.staff import StaffAccounts
from bot.store.store import AUDIT, Store

from tests.conftest import T0

PW = "correct horse"


def _authenticate(url: str, staff_id: str, password: str) -> bool:
    async def go() -> bool:
        store = Store(url)
        try:
            return await StaffAccounts(store, ManualClock(T0)).authenticate(staff_id, password) is not None
        finally:
            store.close()

    return asyncio.run(go())


def test_a_misspelt_department_is_refused_with_the_nearest_name(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    assert main(["staff", "add", "d_wang", "--department", "dermatolgy", "--password", PW, "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "department 'dermatolgy' is not in content/handoff.yml; did you mean 'dermatology'?" in err
    assert "known: dermatology, gynaecology" in err
    assert main(["staff", "list", "--database-url", url]) == 0
    assert "d_wang" not in capsys.readouterr().out  # nothing was added


def test_outside_the_project_folder_the_missing_handoff_file_is_named(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    monkeypatch.chdir(tmp_path)  # an operator in their home folder: no content/ here
    monkeypatch.delenv("CAREBOT_CONTENT", raising=False)
    assert main(["staff", "add", "d_wang", "--department", "cardiology", "--password", PW, "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path.resolve() / 'content' / 'handoff.yml'} does not exist" in err and "--content DIR" in err
    assert "known: \n" not in err + "\n"


def test_deactivate_reset_password_and_list(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    assert main(["staff", "add", "d_sun", "--name", "孙医生", "--title", "主治医师", "--department", "internal_medicine",
                 "--password", PW, "--database-url", url]) == 0
    assert main(["staff", "add", "ops", "--role", "operator", "--password", PW, "--database-url", url]) == 0
    capsys.readouterr()
    # content/handoff.yml rosters d_sun 08:00-20:00 Asia/Shanghai every day, on shift and on call alike
    for at, by_day in (("2026-03-07T10:00+08:00", True), ("2026-03-07T23:00+08:00", False)):
        assert main(["staff", "list", "--at", at, "--database-url", url]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "id\trole\tname\tdepartments\tactive\ton shift now\ton call now"
        sun = next(line for line in out if line.startswith("d_sun\t")).split("\t")
        assert sun[:5] == ["d_sun", "doctor", "孙医生 主治医师", "internal_medicine", "yes"]
        assert (sun[5] == "internal_medicine") == by_day and (sun[6] == "yes") == by_day
    assert main(["staff", "list", "--at", "tonight", "--database-url", url]) == 2
    assert "is not an ISO time" in capsys.readouterr().err

    assert main(["staff", "reset-password", "d_sun", "--password", "short", "--database-url", url]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["staff", "reset-password", "d_sun", "--password", "a new long password", "--database-url", url]) == 0
    assert _authenticate(url, "d_sun", "a new long password") and not _authenticate(url, "d_sun", PW)

    assert main(["staff", "deactivate", "d_sun", "--database-url", url]) == 0
    assert not _authenticate(url, "d_sun", "a new long password")
    assert main(["staff", "list", "--database-url", url]) == 0
    assert "d_sun\tdoctor\t孙医生 主治医师\tinternal_medicine\tno" in capsys.readouterr().out
    assert main(["staff", "activate", "d_sun", "--database-url", url]) == 0
    assert _authenticate(url, "d_sun", "a new long password")
    assert main(["staff", "deactivate", "d_nobody", "--database-url", url]) == 1
    assert "no staff account 'd_nobody'" in capsys.readouterr().err
    assert main(["staff", "deactivate", "--database-url", url]) == 2

    engine = sa.create_engine(url)
    with engine.connect() as c:
        actions = [r.action for r in c.execute(sa.select(AUDIT).where(AUDIT.c.subject == "d_sun").order_by(AUDIT.c.id))]
    engine.dispose()
    assert actions == ["staff_added", "staff_password_reset", "staff_deactivated", "staff_activated"]
