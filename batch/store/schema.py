"""The progress store's tables, and the statements that plan a night over them."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq     INTEGER PRIMARY KEY,             -- order of first appearance in the input
    key     TEXT NOT NULL UNIQUE,
    row     INTEGER NOT NULL,                -- data row number of first appearance
    payload TEXT NOT NULL,                   -- JSON: the input values the job needs
    state   TEXT NOT NULL DEFAULT 'pending', -- pending | done | error
    result  TEXT                             -- JSON: the job's answer
);
CREATE TABLE IF NOT EXISTS rejects (
    row    INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    raw    TEXT NOT NULL                     -- JSON: the row's values as read
);
CREATE TABLE IF NOT EXISTS earlier (         -- earlier runs' answers, until they are planned
    key      TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    asked_on INTEGER NOT NULL,               -- the run date that asked, as a day number
    final    INTEGER NOT NULL,
    result   TEXT NOT NULL
);
"""
# Added after version 1 stores were written: an older store gets them on opening.
ADDED_COLUMNS = {
    "question": "TEXT NOT NULL DEFAULT ''",  # what else the answer depends on (a digest)
    "rank": "INTEGER NOT NULL DEFAULT 0",  # ask order: 0 new, 1 failed before, 2 aged out
    "since": "INTEGER NOT NULL DEFAULT 0",  # day number of the last asking (aged or carried)
    "carried": "INTEGER NOT NULL DEFAULT 0",  # 1: an earlier run's answer, not asked tonight
    # JSON: the job's verdict on the answer, kept when it was given (None: judged at export).
    "verdict": "TEXT",
}
# An item answered before, to the same question, and not yet planned.
PLAN_SQL = (
    "UPDATE items SET {change} FROM earlier e WHERE items.key = e.key "
    "AND items.state = 'pending' AND e.question = items.question AND {when}"
)
QUEUE_INDEX = (
    "CREATE INDEX IF NOT EXISTS items_queue ON items (rank, since, seq) WHERE state != 'done'"
)
