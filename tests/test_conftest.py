"""The test set-up's own mechanisms (tests/conftest.py): in CI a missing packaged asset fails."""

import pytest

SKIPS = '''
import pytest


def test_importorskip():
    pytest.importorskip("no_such_packaged_asset")


def test_skip_not_installed():
    pytest.skip("package 'no_such_corpus' is not installed")


@pytest.mark.skipif(True, reason="pip install --no-deps no_such_data==0.1.5 (make install)")
def test_skipif_marker():
    pass


def test_skip_for_another_reason():
    pytest.skip("torch.distributed is not built in")


@pytest.mark.xfail(reason="no_such_model is not installed")
def test_expected_failure():
    raise ImportError("no_such_model")


def test_passes():
    pass
'''
MODULE_SKIP = 'import pytest\n\npytest.importorskip("no_such_tool")\n\n\ndef test_never_collected():\n    pass\n'


@pytest.mark.parametrize("ci", ["true", "", "false"])
def test_a_missing_packaged_asset_fails_in_ci_and_skips_elsewhere(pytester, request, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_skips=SKIPS, test_module_skip=MODULE_SKIP)
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors",
                                plugins=[request.config.pluginmanager.get_plugin("packaged-assets-in-ci")])
    if ci == "true":  # the two tests that need a missing package fail, the skipif marker (at set-up) and the
        # module that imports one are errors; the other skip, the expected failure and the pass are unchanged
        result.assert_outcomes(passed=1, failed=2, errors=2, skipped=1, xfailed=1)
        result.stdout.fnmatch_lines(["*CI=true and a packaged asset is missing*no_such_packaged_asset*"])
    else:
        result.assert_outcomes(passed=1, skipped=5, xfailed=1)
