"""The README's example runs as written and says what it claims."""

import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has a Python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.passed and result < 1e-8
    assert result.method == "colored"
    printed = capsys.readouterr().out.split()
    assert printed[1:3] == ["True", "colored"]
