"""metrics.jsonl: reading and resuming survive a line cut short by a kill."""
import json

import pytest

from synthpre_jax.training import metric_writers


def _lines(*records, tail=""):
  return "".join(json.dumps(r) + "\n" for r in records) + tail


def test_resume_drops_an_incomplete_last_line_with_a_warning(tmp_path, caplog):
  path = tmp_path / "train" / "metrics.jsonl"
  path.parent.mkdir()
  path.write_text(_lines({"step": 4, "loss": 1.0}, {"step": 8, "loss": 0.5},
                         tail='{"step": 12, "lo'))
  writer = metric_writers.JsonlWriter(path, resume_step=8)
  assert "incomplete last line 3" in caplog.text and str(path) in caplog.text
  writer.write_scalars(12, {"loss": 0.25})
  assert [json.loads(l) for l in path.read_text().splitlines()] == [
      {"step": 4, "loss": 1.0}, {"step": 8, "loss": 0.5}, {"step": 12, "loss": 0.25}]


def test_a_corrupt_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text(_lines({"step": 4}) + "{oops\n" + _lines({"step": 12}))
  with pytest.raises(ValueError, match=rf"{path}, line 2: not valid JSON"):
    metric_writers.read_jsonl(path)
  with pytest.raises(ValueError, match=rf"{path}, line 2"):
    metric_writers.JsonlWriter(path, resume_step=12)
  path.write_text(_lines({"loss": 1.0}, {"step": 4}))
  with pytest.raises(ValueError, match=rf"{path}, line 1: not a metrics record"):
    metric_writers.read_jsonl(path)
