"""The strict unit parser (tests/fakes/systemd_unit.py) refuses what Quadlet or systemd would
refuse or read differently: otherwise the Quadlet tests could pass on a broken unit."""

from __future__ import annotations

import pytest

from fakes.systemd_unit import UnitParseError, parse_unit, quadlet_run_args, split_words

GOOD = """# a comment
[Unit]
Description=demo 100%% sure

[Container]
Image=localhost/x:1
Exec=--flag "two words" 'single' back\\\\slash \\
    continued
Environment="A=1 2" B=$$HOME
Label=k=v
Ulimit=nofile=1:1

[Service]
Restart=on-failure

[Install]
WantedBy=default.target
"""


def test_a_good_unit_reads_as_quadlet_reads_it() -> None:
    unit = parse_unit(GOOD)
    assert unit.value("Unit", "Description") == "demo 100% sure"
    assert unit.words("Container", "Exec") == ["--flag", "two words", "single", "back\\slash",
                                               "continued"]
    assert unit.assignments("Container", "Environment") == {"A": "1 2", "B": "$HOME"}
    args = quadlet_run_args(unit)
    assert args[-6:] == ["localhost/x:1", "--flag", "two words", "single", "back\\slash",
                         "continued"]
    assert args[args.index("--ulimit"):args.index("--ulimit") + 2] == ["--ulimit", "nofile=1:1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Label=k=v", "Labels=k=v"), "unsupported key 'Labels'"),
        (("Label=k=v", "Memory=1g"), "needs Podman 5.5"),
        (("Label=k=v", "Image=again"), "given twice"),
        (("Label=k=v", "Ulimit=nproc=1:1"), "given twice"),  # before 5.0 only the last counts
        (("100%% sure", "100% sure"), "lone %"),
        (("B=$$HOME", "B=$HOME"), "lone \\$"),
        (('"two words"', '"two words'), "unbalanced quotes"),
        (("back\\\\slash", "back\\qslash"), "unknown escape"),
        (("Label=k=v", "Label=novalue"), "NAME=VALUE"),
        (("Label=k=v", "NoNewPrivileges=maybe"), "not a boolean"),
        (("Restart=on-failure", "Type=simple"), "Type=simple"),
        (("Restart=on-failure", "Restrat=on-failure"), "unknown key Restrat="),
        (("[Install]", "[Instal]"), "unknown section"),
        (("Image=localhost/x:1\n", ""), "exactly one of Image"),
        (("# a comment", "Orphan=1"), "before any section"),
        (("# a comment", "just words"), "not a section"),
        (("\\\n    continued", "\\\n# comment\n    continued"), "comment inside"),
    ],
)
def test_what_the_parser_refuses(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(UnitParseError, match=message):
        parse_unit(GOOD.replace(old, new, 1))


def test_several_ulimits_are_fine_from_podman_5() -> None:
    text = GOOD.replace("Label=k=v", "Ulimit=nproc=1:1")
    assert parse_unit(text, podman=(5, 0)).values("Container", "Ulimit") == [
        "nproc=1:1", "nofile=1:1"
    ]


def test_words_split_like_execstart() -> None:
    assert split_words('a "b c" d\\x41 \'e f\'') == ["a", "b c", "dA", "e f"]
