"""Leased work: jobs and evaluations, claimed by one worker at a time and re-sent when lost.

    queued ──claim──▶ running ──finish──▶ succeeded | failed | cancelled
                       │  ▲
                       └──┘ claim after the lease expired: taken over, attempt + 1
                            (after `max_attempts` lost workers: give_up, failed)

A row is claimed with one conditional UPDATE that raises its `attempt` and sets a lease;
the worker renews the lease while it works (`LeaseKeeper`) and writes its results fenced
by its attempt, so once another worker has taken the row over, the old one's writes are
refused. A row queued too long (its broker message was lost) or running with an expired
lease (its worker died) is sent again by the requeue sweep, and its next claim takes it
over. Every kind of leased work is a table with the `Leased` columns; the functions here
take its model class.

    states.py   the status of leased work
    model.py    the lease columns, a model mixin
    service.py  claim, renew, finish, give up, stranded, mark enqueued (session first, never commits)
    keeper.py   the heartbeat thread that renews a held lease
    requeue.py  the sweep that re-sends what no broker message carries
"""
