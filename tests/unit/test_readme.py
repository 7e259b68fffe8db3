from pathlib import Path

from bolt.config_doc import BEGIN, END, config_reference

REPO = Path(__file__).resolve().parents[2]


def test_readme_config_reference_is_current():
    text = (REPO / "README.md").read_text()
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section.strip() == config_reference().strip(), (
        "run: bolt config reference, and paste it into README.md"
    )


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci/run").read_text()
    assert "make test" in (REPO / "README.md").read_text()


def test_library_never_imports_prefect():
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "bolt").rglob("*.py")
        if any(
            line.lstrip().startswith(("import prefect", "from prefect"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
