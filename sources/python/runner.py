"""Rulebook's runner for Event-Driven Ansible source plugins.

Usage: python3 runner.py PLUGIN_FILE EVENTS_FD QUEUE_SIZE [SYS_PATH...]

The source's arguments come as one JSON line on stdin. The plugin file is
imported as a module (never as __main__, so its mock section does not run)
and its ``async def main(queue, args)`` is called with a bounded
asyncio.Queue, as ansible-rulebook does. Every event the plugin puts on the
queue is written to EVENTS_FD as one JSON line; rulebook reads a line only
when the previous events are journaled, so a slow journal fills the pipe, then
the queue, and then the plugin's ``await queue.put`` waits.

Exit status: 0 when main returned (the source has ended), 1 when the plugin
could not be loaded or main raised (the traceback is on stderr), 0 after
SIGTERM once main was cancelled. Anything the plugin prints goes to stderr,
never into the events.
"""

import asyncio
import importlib.util
import inspect
import json
import os
import signal
import sys
import traceback

BATCH = 256


def load(path):
    name = "rulebook_source_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load %s as a Python module" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if main is None:
        raise AttributeError("%s has no main(queue, args) function" % path)
    if not inspect.iscoroutinefunction(main):
        raise TypeError("%s: main must be 'async def main(queue, args)'" % path)
    return main


class SourceQueue(asyncio.Queue):
    """The queue handed to main. ``await queue.put(event)`` waits while the
    queue is full: that is the back-pressure. ``put_nowait`` never raises
    QueueFull: plugins written for EDA's unbounded queue call it from
    thread callbacks (``loop.call_soon_threadsafe(queue.put_nowait, e)``)
    and must not lose events, so it goes over the bound instead."""

    def put_nowait(self, item):
        if not self.full():
            return super().put_nowait(item)
        self._put(item)
        self._unfinished_tasks += 1
        self._finished.clear()
        self._wakeup_next(self._getters)


def encode(event):
    return json.dumps(event, default=str, separators=(",", ":")).encode() + b"\n"


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


async def forward(queue, fd):
    """Writes the queued events to fd, in order, a batch at a time, in a
    thread so that the plugin keeps running while rulebook catches up."""
    loop = asyncio.get_running_loop()
    while True:
        events = [await queue.get()]
        while len(events) < BATCH:
            try:
                events.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        chunks = []
        for event in events:
            if not isinstance(event, dict):
                print(
                    "rulebook: event skipped: a source event must be a mapping, got %s"
                    % type(event).__name__,
                    file=sys.stderr,
                    flush=True,
                )
                continue
            try:
                chunks.append(encode(event))
            except (TypeError, ValueError) as e:
                print("rulebook: event skipped: not JSON: %s" % e, file=sys.stderr, flush=True)
        if chunks:
            await loop.run_in_executor(None, write_all, fd, b"".join(chunks))
        for _ in events:
            queue.task_done()


async def drain(queue, writer):
    """Waits until the events already queued are written."""
    done = asyncio.create_task(queue.join())
    await asyncio.wait([done, writer], return_when=asyncio.FIRST_COMPLETED)
    if writer.done() and not writer.cancelled() and writer.exception() is not None:
        raise writer.exception()
    done.cancel()
    writer.cancel()


async def run(main, args, fd, size):
    queue = SourceQueue(maxsize=size)
    writer = asyncio.create_task(forward(queue, fd))
    plugin = asyncio.create_task(main(queue, args))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, plugin.cancel)
    loop.add_signal_handler(signal.SIGINT, plugin.cancel)
    try:
        await plugin
    except asyncio.CancelledError:
        writer.cancel()
        return 0
    except Exception:
        # The events put before the failure are delivered, then the
        # failure is reported.
        await drain(queue, writer)
        raise
    # main returned: the source has ended once its events are written.
    await drain(queue, writer)
    return 0


def entry():
    path, fd, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for p in reversed(sys.argv[4:]):
        if p not in sys.path:
            sys.path.insert(0, p)
    args = json.loads(sys.stdin.readline() or "{}")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # What the plugin prints must not mix with the events.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        main = load(path)
        return asyncio.run(run(main, args, fd, size))
    except BrokenPipeError:
        return 0  # rulebook stopped reading: it is stopping the source
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        return 1


if __name__ == "__main__":
    sys.exit(entry())
