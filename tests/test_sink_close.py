"""`close()` may come without `open()` (a run that fails before or while its sinks open): the
built-in sinks tolerate it, and the sink contract check holds every sink to it."""

from __future__ import annotations

import pytest

from vitcore.builtin.sinks import ConsoleSink, CsvSink, JsonlSink, TensorBoardSink
from vitcore.components import MetricSink
from vitcore.testing import check_metric_sink


@pytest.mark.parametrize("sink_class", [JsonlSink, CsvSink, TensorBoardSink, ConsoleSink])
def test_builtin_sinks_close_without_having_opened(sink_class):
    sink = sink_class(sink_class.Options())
    sink.close()
    sink.close()  # and twice


class _ClosesWhatItNeverOpened(MetricSink):
    name = "closes_blindly"

    def open(self, ctx):
        self.handle = open(ctx.run_dir / "log.txt", "a", encoding="utf-8")

    def log(self, record):
        self.handle.write(f"{record['event']}\n")

    def close(self):
        self.handle.close()


def test_the_contract_check_refuses_a_sink_whose_close_needs_open(tmp_path):
    with pytest.raises(AssertionError, match=r"_ClosesWhatItNeverOpened\.close\(\) raised AttributeError: .* "
                                             r"without open\(\) before it"):
        check_metric_sink(_ClosesWhatItNeverOpened, None, tmp_path)
