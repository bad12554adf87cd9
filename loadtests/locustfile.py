"""Locust users and load shape that run a driftgate scenario.

Run it through ``driftgate run`` (or :func:`loadtests.runner.run_load`), or by hand::

    DRIFTGATE_SCENARIO=scenarios/smoke.yaml locust -f loadtests/locustfile.py \\
        --headless --host http://127.0.0.1:8000

Each user replays held-out records with their true labels, drifted as the current phase
asks, POSTs them to ``/predict`` and, for ``feedback.share`` of the predictions, POSTs the
true label to ``/feedback`` ``feedback.delay`` later (queued per user and sent from the
user's own loop, so nobody blocks on the delay). The shape runs the phases from the
scenario file and ends the run after the last one, headless or not, distributed or not.

``locust`` is imported before any module that does I/O, so that gevent patches the standard
library first.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from typing import ClassVar

import gevent
import locust
from locust import FastHttpUser, LoadTestShape, task
from locust.env import Environment
from locust.exception import (
    InterruptTaskSet,
    RescheduleTask,
    RescheduleTaskImmediately,
    StopUser,
)
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.web import WebUI

from loadtests.session import (
    CLOCK_MESSAGE,
    FINISH_MESSAGE,
    OVERRUN_LIMIT_S,
    LoadSession,
    watch_parent_if_asked,
)
from loadtests.user_steps import FeedbackItem, predict, send_feedback, wall_time

logger = logging.getLogger(__name__)

# How many due feedbacks a user sends per iteration at most, so feedback never starves
# predictions; the queue is bounded by feedback.max_pending.
FEEDBACK_PER_ITERATION = 2
IDLE_WAIT_S = 0.05


class ScenarioUser(FastHttpUser):
    """Posts the scenario's traffic to /predict and the true labels to /feedback."""

    session: ClassVar[LoadSession | None] = None

    def on_start(self) -> None:
        self.rng = self._session().user_rng()
        self.pending: deque[FeedbackItem] = deque()

    def _session(self) -> LoadSession:
        if self.session is None:
            raise RuntimeError("the driftgate session was not set up by the init event")
        return self.session

    def wait_time(self) -> float:
        wait = self._session().scenario.load.wait_time
        return float(self.rng.uniform(wait.min, wait.max))

    @task
    def predict_then_feedback(self) -> None:
        try:
            self._iteration()
        except (StopUser, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
            raise
        except Exception as error:
            # A bug or a surprise in our own code is a counted failure, never a lost request.
            logger.warning("scenario user step failed: %s: %s", type(error).__name__, error)
            self.environment.events.request.fire(
                request_type="POST",
                name="/predict",
                response_time=0.0,
                response_length=0,
                exception=error,
                context={},
            )

    def _iteration(self) -> None:
        session = self._session()
        now_s = wall_time()
        current = session.current(now_s)
        if current is None:
            # Before the clock reached this process, or after the last phase.
            gevent.sleep(IDLE_WAIT_S)
            return

        for _ in range(FEEDBACK_PER_ITERATION):
            if not self.pending or self.pending[0].due_s > now_s:
                break
            send_feedback(self, session, self.pending.popleft())

        scheduled, elapsed_in_phase_s = current
        sample = session.source.sample(scheduled, elapsed_in_phase_s)
        item = predict(self, session, sample)
        if item is None:
            return
        if len(self.pending) >= session.scenario.feedback.max_pending:
            self.pending.popleft()
            session.feedback_dropped += 1
        self.pending.append(item)


class ScenarioShape(LoadTestShape):
    """Users and spawn rate of the phase running now; None (the end) after the last one."""

    session: LoadSession | None = None

    def tick(self) -> tuple[int, float] | None:
        session = self.session
        if session is None:
            return None
        now_s = wall_time()
        if session.start_s is None:
            session.start_clock(now_s)
            session.send_clock()

        current = session.current(now_s)
        if current is None:
            session.reached_end = True
            return None
        scheduled, _ = current
        return scheduled.phase.users, scheduled.phase.spawn_rate


@locust.events.init.add_listener
def _set_up(
    environment: Environment, runner: Runner, web_ui: WebUI | None = None, **_kwargs: object
) -> None:
    """Load the scenario and wire the session into this process's runner and events."""
    session = LoadSession.from_environment_variables(environment)
    ScenarioUser.session = session
    if environment.shape_class is not None and isinstance(environment.shape_class, ScenarioShape):
        environment.shape_class.session = session
    events = environment.events

    if isinstance(runner, WorkerRunner):
        runner.register_message(CLOCK_MESSAGE, session.on_clock_message)
        runner.register_message(FINISH_MESSAGE, session.on_finish_message)
        events.report_to_master.add_listener(session.report_to_master)
    else:
        _set_up_controller(environment, runner, web_ui, session)

    events.test_start.add_listener(lambda **_: session.version_stats.clear_all())
    watch_parent_if_asked(runner.quit)

    # The dataset's imports (pandas, scipy, statsmodels) leave a large heap that every full
    # garbage collection would scan again while requests churn; they live until exit.
    gc.collect()
    gc.freeze()


def _set_up_controller(
    environment: Environment, runner: Runner, web_ui: WebUI | None, session: LoadSession
) -> None:
    """The master or the local runner: clock, final reports, progress, manifest."""
    events = environment.events
    if isinstance(runner, MasterRunner):
        events.worker_report.add_listener(session.merge_worker_report)
        events.worker_connect.add_listener(lambda client_id, **_: session.send_clock(client_id))

    def on_test_stopping(**_kwargs: object) -> None:
        session.stopped_s = wall_time()
        session.finish_workers()
        if session.reached_end and not _headless(environment):
            # The web UI would keep the process alive after the last phase; a run ends by itself.
            gevent.spawn_later(1.0, _quit_all, runner, web_ui)

    events.test_stopping.add_listener(on_test_stopping)
    events.test_stop.add_listener(lambda **_: session.write_manifest())
    events.quitting.add_listener(lambda **_: session.write_manifest())
    gevent.spawn(session.write_progress_forever)
    gevent.spawn(_stop_on_overrun, session, runner)


def _headless(environment: Environment) -> bool:
    options = environment.parsed_options
    return options is None or bool(getattr(options, "headless", False))


def _quit_all(runner: Runner, web_ui: WebUI | None) -> None:
    runner.quit()
    if web_ui is not None:
        web_ui.stop()


def _stop_on_overrun(session: LoadSession, runner: Runner) -> None:
    """Quit if the run is still going long after its last phase (a starved shape)."""
    while session.end_s is None or wall_time() < session.end_s + OVERRUN_LIMIT_S:
        gevent.sleep(1.0)
    runner.quit()
