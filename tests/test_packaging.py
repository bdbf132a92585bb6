"""Set-up files: pyproject.toml and environment.yml pin the same versions; the scripts exist."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r'\s*-?\s*"?([A-Za-z0-9_.\-]+)==([^",\s]+)"?,?\s*', line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    pyproject = _pins(project['dependencies'] + project['optional-dependencies']['dev'])
    conda = _pins((ROOT / 'environment.yml').read_text().splitlines())
    assert pyproject, 'no pinned dependencies found in pyproject.toml'
    assert conda == pyproject, (f'environment.yml and pyproject.toml disagree: only in yml '
                                f'{set(conda.items()) - set(pyproject.items())}, only in pyproject '
                                f'{set(pyproject.items()) - set(conda.items())}')


def test_readme_names_the_two_commands_and_ci_calls_the_test_command():
    readme = (ROOT / 'README.md').read_text()
    assert 'scripts/reproduce.sh' in readme and 'scripts/test.sh' in readme
    assert 'scripts/test.sh' in (ROOT / '.ci' / 'run').read_text()
    for script in ('reproduce.sh', 'test.sh'):
        assert 'setup_env.sh' in (ROOT / 'scripts' / script).read_text()
