"""``python -m intern_arch`` commands."""

import pytest

from intern_arch.__main__ import main


def test_list_names_every_model_and_its_source(capsys) -> None:
    main(["list"])
    out = capsys.readouterr().out
    for name in ("mnb1", "mnb4", "mnb7", "mnb15", "r50"):
        assert name in out
    assert "Table 8" in out and "UniNet-B1" in out


def test_profile_reports_params_macs_and_flops(capsys) -> None:
    main(["profile", "mnb4", "--img-size", "256"])
    out = capsys.readouterr().out
    rows = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[1:]}
    macs, flops = rows["MACs"], rows["FLOPs"]
    assert flops == pytest.approx(2 * macs, rel=1e-3)
    assert "31.71 M" in out


def test_profile_rejects_unknown_model(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["profile", "mnb99"])
    assert "invalid choice: 'mnb99'" in capsys.readouterr().err
