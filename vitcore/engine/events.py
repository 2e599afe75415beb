"""The run's moments, delivered to the spec's sinks and visualizers and to plugins' hooks.

Each sink and visualizer is built once per run. The history of records is kept in memory (a
resumed run starts from the records its checkpoint covers), so no component re-reads
metrics.jsonl. The moments:

- ``step(record)``: a training record every ``train.log_every_steps`` (sinks' ``log``);
- ``epoch_end(record, ...)``: sinks' ``log`` and ``epoch_end``, the ``epoch_end`` hook, then the
  visualizers whose ``draws_at(epoch, final=False)`` says so; any of them may raise ``StopRun``;
- ``draw_final(...)``: every visualizer whose ``draws_at(epoch, final=True)`` says so;
- ``run_end(...)``: sinks' ``run_end``, then the ``run_end`` hook, once the status is final.

Only rank 0 has events (``RunEvents.silent()`` elsewhere). A component that fails is named with
its plugin in the error, so a user knows which one to fix or remove.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from vitcore.components import (
    EpochEnd,
    MetricSink,
    Preprocessing,
    RunEnd,
    SinkContext,
    StopRun,
    Visualizer,
    VisualizerContext,
)
from vitcore.errors import VitcoreError
from vitcore.spec import ResolvedComponent


class ComponentFailed(VitcoreError):
    """A sink or visualizer raised: the message names it and the plugin that supplied it."""


@contextmanager
def _blame(entry: ResolvedComponent, kind: str, moment: str) -> Iterator[None]:
    try:
        yield
    except (StopRun, VitcoreError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the component's name
        raise ComponentFailed(
            f"{kind} {entry.type!r} (plugin {entry.plugin}) failed in {moment}: {type(exc).__name__}: {exc}"
        ) from exc


class RunEvents:
    """Sinks, visualizers and hooks of one run, and the history of its records."""

    def __init__(self, run_dir: Path | None, sinks: Sequence[tuple[ResolvedComponent, MetricSink]] = (),
                 visualizers: Sequence[tuple[ResolvedComponent, Visualizer]] = (),
                 history: list[dict[str, Any]] | None = None, call_hook: Callable[..., Any] | None = None) -> None:
        self.run_dir = run_dir
        self.sinks = list(sinks)
        self.visualizers = list(visualizers)
        self.history: list[dict[str, Any]] = history if history is not None else []
        self._call_hook = call_hook
        self._closed = False

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def silent(cls) -> "RunEvents":
        """For ranks other than 0 and for harnesses: nothing is logged or drawn."""
        return cls(None)

    @classmethod
    def open(cls, sink_entries: Sequence[ResolvedComponent], visualizer_entries: Sequence[ResolvedComponent],
             ctx: SinkContext) -> "RunEvents":
        """Build and open every sink and build every visualizer, once for the run."""
        from vitcore.metrics_file import read_records
        from vitcore.plugins import get_host

        # What the checkpoint covers of an earlier attempt (records after it are dropped by sinks).
        history = [r for r in read_records(ctx.run_dir) if r.get("step", 0) <= ctx.start_step] if ctx.resumed else []
        host = get_host()
        events = cls(ctx.run_dir, history=history,
                     call_hook=lambda name, **kwargs: host.call(name, propagate=(StopRun,), **kwargs))
        try:
            for entry in sink_entries:
                sink = entry.instantiate()
                events.sinks.append((entry, sink))  # closed by close() even if open() fails
                with _blame(entry, "sink", "open"):
                    sink.open(ctx)
            events.visualizers = [(entry, entry.instantiate()) for entry in visualizer_entries]
        except BaseException:
            events.close()
            raise
        return events

    # -- moments ------------------------------------------------------------------------------

    def log_graph(self, model: Any, example: Any) -> None:
        for entry, sink in self.sinks:
            with _blame(entry, "sink", "log_graph"):
                sink.log_graph(model, example)

    def step(self, record: dict[str, Any]) -> None:
        self._log(record)

    def epoch_end(self, record: dict[str, Any], epochs: int, improved: bool) -> None:
        """Log an epoch record and tell everyone the epoch ended; StopRun passes through."""
        self._log(record)
        if self.run_dir is None:
            return
        event = EpochEnd(run_dir=self.run_dir, epoch=int(record["epoch"]), epochs=epochs, record=record,
                         history=tuple(self.history), improved=improved)
        for entry, sink in self.sinks:
            with _blame(entry, "sink", "epoch_end"):
                sink.epoch_end(event)
        if self._call_hook is not None:
            self._call_hook("epoch_end", event=event)

    def draw(self, epoch: int, final: bool, model: Any, classes: list[str], pre: Preprocessing,
             samples: Sequence[Any], step: int) -> list[Path]:
        """Render the visualizers that draw at this moment; pictures go to the sinks too."""
        due = [(entry, v) for entry, v in self.visualizers if v.draws_at(epoch, final)]
        if self.run_dir is None or not due:
            return []
        ctx = VisualizerContext(
            run_dir=self.run_dir, records=tuple(self.history), classes=classes, model=model,
            preprocessing=pre, samples=samples, epoch=epoch, final=final,
            log_histogram=lambda tag, values: self._histogram(tag, values, step),
        )
        model.eval()
        paths: list[Path] = []
        for entry, visualizer in due:
            with _blame(entry, "visualizer", "render"):
                paths.extend(visualizer.render(ctx))
        for path in paths:
            for entry, sink in self.sinks:
                with _blame(entry, "sink", "log_image"):
                    sink.log_image(f"viz/{path.stem}", path, step)
        return paths

    def run_end(self, status: str, summary: Mapping[str, Any]) -> None:
        """The run is over (any status): sinks first, then they are closed, then the hook.
        Failures here only warn: the run's outcome is already decided and written."""
        import warnings

        if self.run_dir is None:
            return
        event = RunEnd(run_dir=self.run_dir, status=status, summary=dict(summary), history=tuple(self.history))
        for entry, sink in self.sinks:
            try:
                with _blame(entry, "sink", "run_end"):
                    sink.run_end(event)
            except ComponentFailed as exc:
                warnings.warn(str(exc), stacklevel=2)
        self.close()  # files complete before plugins (reports) read them
        if self._call_hook is not None:
            self._call_hook("run_end", event=event)

    def close(self) -> None:
        """Close every sink once (files flushed), whatever happened."""
        if self._closed:
            return
        self._closed = True
        for _entry, sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - closing the others matters more
                pass

    # -- helpers ------------------------------------------------------------------------------

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        for entry, sink in self.sinks:
            with _blame(entry, "sink", f"log of a {record.get('event')} record"):
                sink.log(record)

    def _histogram(self, tag: str, values: Any, step: int) -> None:
        for entry, sink in self.sinks:
            with _blame(entry, "sink", "log_histogram"):
                sink.log_histogram(tag, values, step)
