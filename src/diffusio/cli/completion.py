"""``diffusio completion``: a shell completion script for every command and flag."""

from __future__ import annotations

SHELLS = ("bash", "zsh", "tcsh")


def register(sub) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or tcsh)",
                       description="Print a completion script for every diffusio command and flag.",
                       epilog="Example:\n  diffusio completion bash > ~/.local/share/bash-completion/completions/diffusio\n"
                              "  diffusio completion zsh > ~/.zfunc/_diffusio   # a folder on $fpath",
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=cmd_completion)


def cmd_completion(args) -> int:
    import shtab

    from diffusio.cli.main import build_parser

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0
