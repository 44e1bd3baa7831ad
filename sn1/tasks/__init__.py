"""The validator's questions: tasks grounded in real material (spec §7, §8).

    from sn1.tasks import build_task, NAMES
    task = build_task("qa", engine, random.Random(seed))   # blocking: call it in a thread
    task.challenge, task.reference, task.rewards, task.penalties, task.to_event()

Importing this package is light (no model, no dataset is loaded).
"""

from .base import Task, TaskError
from .definitions import ALL_NAMES, NAMES, TASKS, VERIFIED, TaskDef, build_task
from .persona import MOODS, PROFILES, TONES, ChallengeError, Persona, random_persona

__all__ = ["Task", "TaskError", "TaskDef", "TASKS", "NAMES", "ALL_NAMES", "VERIFIED", "build_task", "ChallengeError",
           "Persona", "random_persona", "PROFILES", "MOODS", "TONES"]
