"""A command line people know: did-you-mean for subcommands and flags, a description and examples
in every subcommand's help, shell completion scripts generated from the parser."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from netc import cli


def _misuse(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_did_you_mean_for_a_subcommand_and_for_a_flag_of_the_subcommand(capsys):
    assert "hint: did you mean 'check'?" in _misuse(capsys, ["chek", "x.yaml"])
    assert "hint: did you mean '--format'?" in _misuse(capsys, ["check", "--formt", "json", "x.yaml"])
    assert "hint: did you mean '--batch-size'?" in _misuse(capsys, ["summary", "x.yaml", "--bach-size", "3"])
    assert "hint: did you mean 'mermaid'?" in _misuse(capsys, ["graph", "x.yaml", "--format", "mermiad"])
    assert "hint:" not in _misuse(capsys, ["check", "--zzzzzzzz", "x.yaml"])


def test_every_subcommand_help_has_a_description_and_examples():
    subs = cli._subparsers(cli._parser())
    assert set(cli.EXAMPLES) == set(subs)
    for name, p in subs.items():
        text = p.format_help()
        assert p.description and p.description.endswith("."), name
        assert "examples:\n  netc " + name in text, name


def _bash_complete(script: str, words: list[str]) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    out = subprocess.run(["bash", "-c", f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _netc; "
                                        "printf '%s\\n' \"${COMPREPLY[@]}\""],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_of_subcommands_flags_and_choices():
    script = cli.completion_script(cli._parser(), "bash")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert _bash_complete(script, ["netc", "ch"]) == ["check"]
    assert "--format" in _bash_complete(script, ["netc", "summary", "--f"])
    assert _bash_complete(script, ["netc", "graph", "--format", ""]) == ["mermaid", "dot", "svg", "png"]
    assert _bash_complete(script, ["netc", "completion", "z"]) == ["zsh"]


def test_zsh_and_fish_scripts():
    zsh = cli.completion_script(cli._parser(), "zsh")
    assert zsh.startswith("#compdef netc\n") and "bashcompinit" in zsh
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=zsh, text=True).returncode == 0
    fish = cli.completion_script(cli._parser(), "fish")
    assert "complete -c netc -f -n '__fish_use_subcommand' -a check" in fish
    assert "complete -c netc -n '__fish_seen_subcommand_from graph' -l format -x -a 'mermaid dot svg png'" in fish
    if shutil.which("fish"):
        assert subprocess.run(["fish", "--no-execute"], input=fish, text=True).returncode == 0


def test_completion_command_prints_the_script(capsys):
    assert cli.main(["completion", "bash"]) == 0
    assert "complete -o filenames -o bashdefault -F _netc netc" in capsys.readouterr().out
