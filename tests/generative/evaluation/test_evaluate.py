"""diffusio evaluate: the prompt checks of a text model can be skipped, and only on purpose."""

import json

from diffusio.cli.main import main


def test_per_prompt_zero_scores_the_samples_without_the_prompt_checks(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["evaluate", "fashion-fast", "-n", "6", "--steps", "1", "--per-prompt", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "class_prompts" not in report and "paraphrases" not in report
    assert report["model"]["fd"] > 0 and 0 <= report["label_accuracy"] <= 1
    assert "class prompts" not in capsys.readouterr().out
    assert main(["evaluate", "fashion-fast", "-n", "6", "--steps", "1", "--per-prompt", "1", "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["class_prompts"]) == 10  # one image per prompt, every class
