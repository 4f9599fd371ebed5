"""Step-by-step parity of the JAX MiniGrid engine with Farama minigrid, on all seven ported tasks.

Each episode starts from a Farama reset (fixed seeds). Its world is read into a `Layout` by the task's
`from_farama` on a 27 × 27 canvas (larger than every task, MultiRoom's 25 × 25 included, so the wall
padding is exercised), and the actions Farama was stepped with are replayed in `engine.step_world` (vmapped
over episodes, scanned over steps, one compilation for every task). Required at every step of every
episode: the same 7×7×3 observation (exact, including the reset observation), the same reward (|Δ| < 1e-6:
Farama computes it in float64, the port in float32), the same `terminated` and `truncated`, and the port's
`success` flag set exactly on the steps Farama pays a positive reward.

Action sequences:

- random, forward-biased walks over all seven actions, run to the episode's end;
- scripted sequences that drive the agent (a breadth-first planner over Farama's live state, poses
  (x, y, dir) linked by left/right/forward through cells the agent can enter) to each task's outcomes:
  DoorKey's key/door/goal (with a toggle on the locked door without the key, a drop and re-pickup of the key,
  closing and reopening the unlocked door), RedBlueDoors' red-then-blue success and its two failures (blue
  first; red opened then closed again before blue), Memory's matching and wrong object (with a pickup in
  front of the start object, which MemoryEnv remaps to toggle), LavaGap's and DistShift's goal and lava,
  SimpleCrossing's goal, MultiRoom's goal through its door (opened on the way), and truncation (idle
  turning until `max_steps`).

The coverage assertions make the test fail if a scripted run does not reach the outcome it was written for
(success with a positive reward, termination without reward, truncation) or an interaction it was meant to
exercise (pickup, drop, unlock, open, close) never happens. `parity_report()` gathers the figures (steps
compared, episodes, outcomes, events, worst reward difference per task); `python tests/test_minigrid_parity.py
[random_episodes script_seeds truncation_seeds]` prints them, and the slow test runs ~200 episodes per task.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import sys
import time

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from minigrid.wrappers import ImgObsWrapper
from mtrl.envs.minigrid import TASK_MODULES, engine
from mtrl.envs.minigrid.engine import DONE, DROP, FORWARD, LEFT, PICKUP, RIGHT, TOGGLE, Rules

CANVAS = (27, 27)
"""Larger than every task (MultiRoom's grid is 25 × 25), so every world sits in a padding of walls."""
TASKS = tuple(TASK_MODULES)
MODULES = {
    name: importlib.import_module(f"mtrl.envs.minigrid.tasks.{mod}") for name, mod in TASK_MODULES.items()
}
HORIZON = max(module.TASK.max_steps for module in MODULES.values())
"""Every replay is padded to the longest episode any task allows (one compiled shape for all)."""
CHUNK = 16
"""Episodes per compiled replay call."""
REWARD_TOL = 1e-6
RANDOM_POLICY = np.array([0.15, 0.15, 0.4, 0.1, 0.05, 0.1, 0.05])
"""left, right, forward, pickup, drop, toggle, done: forward-biased so walks reach goals, lava and doors."""
DIR_TO_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))

# CI sizes: random walks per task, seeds per scripted sequence (truncation: TRUNCATION_SEEDS)
CI_RANDOM, CI_SCRIPT_SEEDS, CI_TRUNCATION_SEEDS = 10, 2, 1
SLOW_RANDOM, SLOW_SCRIPT_SEEDS, SLOW_TRUNCATION_SEEDS = 150, 10, 5


# --------------------------------------------------------------------------------------------------------
# Recording Farama episodes


@dataclasses.dataclass
class Episode:
    """One Farama episode: its start layout, the actions, and what Farama returned after each."""

    task: str
    seed: int
    kind: str
    intended: str | None  # the outcome a scripted sequence was written to reach; None for random walks
    layout: object  # engine Layout read by the task's from_farama right after reset
    obs: list = dataclasses.field(default_factory=list)  # [steps + 1] uint8 [7, 7, 3], reset first
    actions: list = dataclasses.field(default_factory=list)
    rewards: list = dataclasses.field(default_factory=list)
    terminated: list = dataclasses.field(default_factory=list)
    truncated: list = dataclasses.field(default_factory=list)
    events: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    @property
    def done(self) -> bool:
        return bool(self.actions) and (self.terminated[-1] or self.truncated[-1])

    @property
    def outcome(self) -> str:
        """success (terminated, reward > 0), failure (terminated, no reward), truncation, or unfinished."""
        if not self.done:
            return "unfinished"
        if self.terminated[-1]:
            return "success" if self.rewards[-1] > 0 else "failure"
        return "truncation"


class Recorder:
    """Steps a Farama env (`ImgObsWrapper(gymnasium.make(id))`) and records an `Episode`."""

    def __init__(self, env, task: str, seed: int, kind: str, intended: str | None):
        obs, _ = env.reset(seed=seed)
        self.env, self.u = env, env.unwrapped
        layout = MODULES[task].from_farama(self.u, *CANVAS)
        self.episode = Episode(task, seed, kind, intended, jax.tree.map(np.asarray, layout), [np.array(obs)])

    def act(self, action: int) -> bool:
        """One step (no-op once the episode is over); returns whether the episode is over."""
        if self.episode.done:
            return True
        interacts = action in (PICKUP, DROP, TOGGLE)
        if interacts:
            carried, doors = self.u.carrying, _door_states(self.u)
        obs, reward, terminated, truncated, _ = self.env.step(action)
        ep = self.episode
        ep.actions.append(action)
        ep.obs.append(np.array(obs))
        ep.rewards.append(float(reward))
        ep.terminated.append(bool(terminated))
        ep.truncated.append(bool(truncated))
        if interacts:
            if carried is None and self.u.carrying is not None:
                ep.events["pickup"] += 1
            if carried is not None and self.u.carrying is None:
                ep.events["drop"] += 1
            for pos, (was_open, was_locked) in doors.items():
                is_open, is_locked = _door_states(self.u)[pos]
                if was_locked and not is_locked:
                    ep.events["unlock"] += 1
                elif is_open and not was_open:
                    ep.events["open"] += 1
                elif was_open and not is_open:
                    ep.events["close"] += 1
        return ep.done

    def run(self, actions) -> bool:
        for action in actions:
            if self.act(action):
                return True
        return self.episode.done


def _door_states(u) -> dict[tuple[int, int], tuple[bool, bool]]:
    return {
        (x, y): (obj.is_open, obj.is_locked)
        for x in range(u.width)
        for y in range(u.height)
        if (obj := u.grid.get(x, y)) is not None and obj.type == "door"
    }


# --------------------------------------------------------------------------------------------------------
# A planner over Farama's live state


def find(u, kind: str, color: str | None = None) -> list[tuple[int, int]]:
    """Positions of the objects of type `kind` (and `color`) in Farama's grid."""
    return [
        (x, y)
        for x in range(u.width)
        for y in range(u.height)
        if (obj := u.grid.get(x, y)) is not None and obj.type == kind and color in (None, obj.color)
    ]


def plan(u, reached, stand_on: tuple[int, int] | None = None) -> list[int] | None:
    """Shortest left/right/forward sequence from the agent's pose to a pose (x, y, dir) with `reached`.

    The agent moves through empty cells, floor and open doors; `stand_on` may also be entered (the goal, a
    lava cell, Memory's target). MemoryEnv's two rule cells end the episode when entered, so they are avoided
    unless one is `stand_on`. Returns None where no such pose is reachable."""
    rule_cells = (getattr(u, "success_pos", None), getattr(u, "failure_pos", None))
    avoid = {tuple(int(v) for v in p) for p in rule_cells if p is not None}

    def enterable(x: int, y: int) -> bool:
        if (x, y) == stand_on:
            return True
        if (x, y) in avoid or not (0 <= x < u.width and 0 <= y < u.height):
            return False
        obj = u.grid.get(x, y)
        return obj is None or obj.type == "floor" or (obj.type == "door" and obj.is_open)

    start = (int(u.agent_pos[0]), int(u.agent_pos[1]), int(u.agent_dir))
    parents = {start: None}
    queue = collections.deque([start])
    while queue:
        pose = queue.popleft()
        if reached(*pose):
            actions = []
            while parents[pose] is not None:
                pose, action = parents[pose]
                actions.append(action)
            return actions[::-1]
        x, y, d = pose
        dx, dy = DIR_TO_VEC[d]
        moves = [(LEFT, (x, y, (d + 3) % 4)), (RIGHT, (x, y, (d + 1) % 4))]
        if enterable(x + dx, y + dy):
            moves.append((FORWARD, (x + dx, y + dy, d)))
        for action, nxt in moves:
            if nxt not in parents:
                parents[nxt] = (pose, action)
                queue.append(nxt)
    return None


def go_face(rec: Recorder, pos: tuple[int, int]) -> bool:
    """Walk to a pose facing `pos`; returns whether the episode ended on the way."""
    path = plan(rec.u, lambda x, y, d: (x + DIR_TO_VEC[d][0], y + DIR_TO_VEC[d][1]) == tuple(pos))
    return rec.run(_found(path, rec, f"face {pos}"))


def go_stand(rec: Recorder, pos: tuple[int, int]) -> bool:
    """Walk onto `pos` (the final forward step enters it)."""
    pos = tuple(int(v) for v in pos)
    path = plan(rec.u, lambda x, y, d: (x, y) == pos, stand_on=pos)
    return rec.run(_found(path, rec, f"stand on {pos}"))


def _found(path, rec: Recorder, what: str) -> list[int]:
    if path is None:
        ep = rec.episode
        grid = rec.u.pprint_grid()
        raise AssertionError(f"{ep.task} seed {ep.seed} ({ep.kind}): no path to {what}\n{grid}")
    return path


# --------------------------------------------------------------------------------------------------------
# Scripts: (kind, intended outcome, function of a Recorder)


def doorkey_success(rec: Recorder) -> None:
    u = rec.u
    (door,), (key,) = find(u, "door"), find(u, "key")
    facing_door = plan(u, lambda x, y, d: (x + DIR_TO_VEC[d][0], y + DIR_TO_VEC[d][1]) == door)
    if facing_door is not None:  # (the key may block the way to the door)
        rec.run([*facing_door, TOGGLE])  # locked, no key: nothing happens
    go_face(rec, key)
    # pick up; again (hands full); drop; drop (empty hands); pick up
    rec.run([PICKUP, PICKUP, DROP, DROP, PICKUP])
    go_face(rec, door)
    rec.run([DROP, TOGGLE, TOGGLE, TOGGLE])  # drop onto a door: no; unlock (opens); close; open
    go_stand(rec, find(u, "goal")[0])


def redblue(order: str):
    def script(rec: Recorder) -> None:
        red, blue = find(rec.u, "door", "red")[0], find(rec.u, "door", "blue")[0]
        rec.run([PICKUP, DROP])  # nothing to pick up or carried: no-ops
        if order == "red_blue":
            go_face(rec, red)
            rec.act(TOGGLE)
        elif order == "red_closed_blue":
            go_face(rec, red)
            rec.run([TOGGLE, TOGGLE])
        go_face(rec, blue)
        rec.act(TOGGLE)

    return script


def memory(choice: str):
    def script(rec: Recorder) -> None:
        u = rec.u
        go_face(rec, (1, u.height // 2 - 1))  # the start room's object
        rec.act(PICKUP)  # MemoryEnv turns pickup into toggle: the object stays put
        go_stand(rec, u.success_pos if choice == "match" else u.failure_pos)

    return script


def goal(rec: Recorder) -> None:
    rec.run([TOGGLE, PICKUP, DROP])
    go_stand(rec, find(rec.u, "goal")[0])


def lava(rec: Recorder) -> None:
    u = rec.u
    lava_cells = set(find(u, "lava"))
    path = plan(u, lambda x, y, d: (x + DIR_TO_VEC[d][0], y + DIR_TO_VEC[d][1]) in lava_cells)
    rec.run(_found(path, rec, "face lava") + [FORWARD])


def multiroom(rec: Recorder) -> None:
    """Open the (closed) doors on the way, then walk onto the goal."""
    u = rec.u
    target = find(u, "goal")[0]
    for _ in range(4):
        if plan(u, lambda x, y, d: (x, y) == target, stand_on=target) is not None:
            break
        closed = {pos for pos in find(u, "door") if not u.grid.get(*pos).is_open}
        path = plan(u, lambda x, y, d, closed=closed: (x + DIR_TO_VEC[d][0], y + DIR_TO_VEC[d][1]) in closed)
        rec.run(_found(path, rec, "face a closed door") + [TOGGLE])
    go_stand(rec, target)


def truncation(rec: Recorder) -> None:
    """Turn on the spot (with `done`, a no-op) until max_steps truncates."""
    while not rec.run([LEFT, RIGHT, DONE, RIGHT]):
        pass


SCRIPTS = {
    "DoorKey-6x6": [("key_door_goal", "success", doorkey_success)],
    "DistShift1": [("goal", "success", goal), ("lava", "failure", lava)],
    "RedBlueDoors-6x6": [
        ("red_then_blue", "success", redblue("red_blue")),
        ("blue_first", "failure", redblue("blue")),
        ("red_closed_then_blue", "failure", redblue("red_closed_blue")),
    ],
    "LavaGapS7": [("goal", "success", goal), ("lava", "failure", lava)],
    "MemoryS11": [("match", "success", memory("match")), ("other", "failure", memory("other"))],
    "SimpleCrossingS9N2": [("goal", "success", goal)],
    "MultiRoom-N2-S4": [("doors_goal", "success", multiroom)],
}
REQUIRED_EVENTS = {
    "DoorKey-6x6": {"pickup", "drop", "unlock", "open", "close"},
    "RedBlueDoors-6x6": {"open", "close"},
    "MultiRoom-N2-S4": {"open"},
}
"""Interactions the scripted runs must have exercised, per task."""


def record_task(task: str, random_episodes: int, script_seeds: int, truncation_seeds: int) -> list[Episode]:
    """Farama episodes of `task`: random walks, then every scripted sequence on `script_seeds` seeds."""
    env = ImgObsWrapper(gymnasium.make(MODULES[task].TASK.env_id))
    rng = np.random.default_rng(TASKS.index(task))
    episodes = []
    for i in range(random_episodes):
        rec = Recorder(env, task, seed=i, kind="random", intended=None)
        while not rec.act(int(rng.choice(len(RANDOM_POLICY), p=RANDOM_POLICY))):
            pass
        episodes.append(rec.episode)
    scripts = [*SCRIPTS[task], ("truncation", "truncation", truncation)]
    for s, (kind, intended, script) in enumerate(scripts):
        for i in range(truncation_seeds if kind == "truncation" else script_seeds):
            rec = Recorder(env, task, seed=10_000 + 1000 * s + i, kind=kind, intended=intended)
            script(rec)
            episodes.append(rec.episode)
    env.close()
    return episodes


# --------------------------------------------------------------------------------------------------------
# Replaying in the JAX engine


@jax.jit
def _replay(layouts, rules: Rules, actions: jax.Array):
    """Per episode: the reset observation, then each step's (observation, reward, terminated, truncated,
    success), over `actions` [episodes, HORIZON]."""

    def episode(layout, rule, acts):
        state = engine.start(layout)

        def body(state, action):
            state, reward, terminated, truncated, success = engine.step_world(state, action, rule)
            return state, (engine.observe(state, rule), reward, terminated, truncated, success)

        return engine.observe(state, rule), jax.lax.scan(body, state, acts)[1]

    return jax.vmap(episode)(layouts, rules, actions)


def replay(episodes: list[Episode]):
    """The JAX engine's outputs for each episode, as numpy, in chunks of CHUNK (padded with copies)."""
    outputs = []
    for start in range(0, len(episodes), CHUNK):
        chunk = episodes[start : start + CHUNK]
        padded = chunk + [chunk[0]] * (CHUNK - len(chunk))
        layouts = jax.tree.map(lambda *xs: np.stack(xs), *(ep.layout for ep in padded))
        tasks = [MODULES[ep.task].TASK for ep in padded]
        rules = Rules(
            max_steps=jnp.asarray([t.max_steps for t in tasks], jnp.int32),
            see_through_walls=jnp.asarray([t.see_through_walls for t in tasks]),
            pickup_is_toggle=jnp.asarray([t.pickup_is_toggle for t in tasks]),
        )
        actions = np.full((CHUNK, HORIZON), DONE, np.int32)
        for row, ep in enumerate(padded):
            actions[row, : len(ep.actions)] = ep.actions
        obs0, (obs, reward, terminated, truncated, success) = jax.device_get(_replay(layouts, rules, actions))
        for row in range(len(chunk)):
            outputs.append((obs0[row], obs[row], reward[row], terminated[row], truncated[row], success[row]))
    return outputs


def compare(ep: Episode, output) -> tuple[float, str | None]:
    """(worst reward difference, first mismatch as a message or None) of one episode."""
    obs0, obs, reward, terminated, truncated, success = output
    n = len(ep.actions)
    farama_reward = np.asarray(ep.rewards, np.float64)
    diff = np.abs(reward[:n].astype(np.float64) - farama_reward)
    worst = float(diff.max()) if n else 0.0
    checks = [
        ("obs", np.all(obs[:n] == np.stack(ep.obs[1:]), axis=(1, 2, 3))),
        ("reward", diff < REWARD_TOL),
        ("terminated", terminated[:n] == np.asarray(ep.terminated)),
        ("truncated", truncated[:n] == np.asarray(ep.truncated)),
        ("success", success[:n] == (farama_reward > 0)),
    ]
    where = f"ImgObsWrapper(gymnasium.make({MODULES[ep.task].TASK.env_id!r})).reset(seed={ep.seed})"
    if not np.array_equal(obs0, ep.obs[0]):
        return worst, f"{ep.task} ({ep.kind}) reset observation differs; {where}"
    for name, ok in checks:
        if not ok.all():
            t = int(np.argmin(ok))
            return worst, (
                f"{ep.task} ({ep.kind}) {name} differs at step {t} (action {ep.actions[t]}): "
                f"farama reward={ep.rewards[t]} term={ep.terminated[t]} trunc={ep.truncated[t]} | "
                f"jax reward={reward[t]} term={terminated[t]} trunc={truncated[t]} success={success[t]}; "
                f"{where}, then actions {ep.actions[: t + 1]}"
            )
    return worst, None


# --------------------------------------------------------------------------------------------------------
# The report


def check_task(task: str, random_episodes: int, script_seeds: int, truncation_seeds: int) -> dict:
    """Record `task`'s episodes in Farama, replay them in JAX, compare; the task's parity figures."""
    tic = time.perf_counter()
    episodes = record_task(task, random_episodes, script_seeds, truncation_seeds)
    outputs = replay(episodes)
    worst, mismatches = 0.0, []
    for ep, output in zip(episodes, outputs, strict=True):
        ep_worst, message = compare(ep, output)
        worst = max(worst, ep_worst)
        if message:
            mismatches.append(message)
    scripted = [ep for ep in episodes if ep.intended]
    events = sum((ep.events for ep in scripted), collections.Counter())
    random_events = sum((ep.events for ep in episodes if not ep.intended), collections.Counter())
    return {
        "task": task,
        "episodes": len(episodes),
        "steps": sum(len(ep.actions) for ep in episodes),
        "random_outcomes": dict(collections.Counter(ep.outcome for ep in episodes if not ep.intended)),
        "scripted_outcomes": dict(collections.Counter(f"{ep.kind}:{ep.outcome}" for ep in scripted)),
        "missed": [f"{ep.kind} seed {ep.seed}: {ep.outcome}" for ep in scripted if ep.outcome != ep.intended],
        "covered": sorted({ep.outcome for ep in scripted if ep.outcome == ep.intended}),
        "events": dict(events),
        "random_events": dict(random_events),
        "missing_events": sorted(REQUIRED_EVENTS.get(task, set()) - set(events)),
        "success_rewards": [r for ep in episodes if ep.outcome == "success" for r in ep.rewards[-1:]],
        "worst_reward_diff": worst,
        "mismatches": mismatches,
        "seconds": time.perf_counter() - tic,
    }


def parity_report(
    random_episodes: int = CI_RANDOM,
    script_seeds: int = CI_SCRIPT_SEEDS,
    truncation_seeds: int = CI_TRUNCATION_SEEDS,
    tasks=TASKS,
    show: bool = True,
) -> list[dict]:
    """Parity figures for `tasks`; printed as a table when `show`."""
    rows = [check_task(task, random_episodes, script_seeds, truncation_seeds) for task in tasks]
    if show:
        print(f"\nMiniGrid parity, JAX engine vs Farama minigrid (canvas {CANVAS[0]}x{CANVAS[1]})")
        for row in rows:
            rewards = row["success_rewards"]
            print(
                f"{row['task']:<20} episodes {row['episodes']:>4}  steps {row['steps']:>7}  "
                f"mismatches {len(row['mismatches'])}  worst |Δreward| {row['worst_reward_diff']:.2e}  "
                f"({row['seconds']:.1f} s)\n"
                f"{'':<22}random: {row['random_outcomes']}\n"
                f"{'':<22}scripted: {row['scripted_outcomes']}\n"
                f"{'':<22}events: scripted {row['events']}, random {row['random_events']}; success rewards "
                f"{min(rewards, default=0):.3f}..{max(rewards, default=0):.3f}"
            )
        print(
            f"total: {sum(r['episodes'] for r in rows)} episodes, {sum(r['steps'] for r in rows)} steps, "
            f"{sum(len(r['mismatches']) for r in rows)} mismatches, worst |Δreward| "
            f"{max(r['worst_reward_diff'] for r in rows):.2e}"
        )
    return rows


def assert_parity(row: dict) -> None:
    shown = "\n".join(row["mismatches"][:5])
    assert not row["mismatches"], f"{len(row['mismatches'])} mismatching episodes:\n{shown}"
    assert not row["missed"], f"{row['task']}: scripted runs missed their outcome: {row['missed']}"
    assert not row["missing_events"], f"{row['task']}: never exercised {row['missing_events']}"
    intended = {outcome for _, outcome, _ in SCRIPTS[row["task"]]} | {"truncation"}
    assert set(row["covered"]) == intended, (row["covered"], intended)
    assert all(r > 0 for r in row["success_rewards"])
    assert row["worst_reward_diff"] < REWARD_TOL


@pytest.mark.parametrize("task", TASKS)
def test_parity(task):
    (row,) = parity_report(tasks=(task,), show=False)
    assert_parity(row)


@pytest.mark.slow
def test_parity_many_episodes():
    """The closing figures: ~200 episodes per task (150 random walks, 10 seeds per script, 5 truncations)."""
    for row in parity_report(SLOW_RANDOM, SLOW_SCRIPT_SEEDS, SLOW_TRUNCATION_SEEDS):
        assert_parity(row)


def test_compare_catches_each_kind_of_difference():
    """The comparison is not vacuous: a one-cell observation change, a reward off by 1e-5, a flipped
    terminated or truncated flag, each on a single step, is reported as a mismatch of that field."""
    (ep,) = record_task("LavaGapS7", 0, 1, 0)[:1]
    (output,) = replay([ep])
    assert compare(ep, output)[1] is None
    t = len(ep.actions) - 1  # the success step

    def perturbed(**change):
        return compare(dataclasses.replace(ep, **change), output)[1]

    obs = [o.copy() for o in ep.obs]
    obs[1][0, 0, 0] += 1
    rewards = list(ep.rewards)
    rewards[t] += 1e-5
    assert "obs differs at step 0" in perturbed(obs=obs)
    assert f"reward differs at step {t}" in perturbed(rewards=rewards)
    assert f"terminated differs at step {t}" in perturbed(terminated=ep.terminated[:t] + [False])
    assert "truncated differs at step 0" in perturbed(truncated=[True] + ep.truncated[1:])
    reset_obs = [o.copy() for o in ep.obs]
    reset_obs[0][3, 6, 0] = 5
    assert "reset observation differs" in perturbed(obs=reset_obs)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [CI_RANDOM, CI_SCRIPT_SEEDS, CI_TRUNCATION_SEEDS]
    parity_report(*sizes)
