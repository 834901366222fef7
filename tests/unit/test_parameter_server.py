"""The parameter server hands out weights only when they are newer."""

from apex_dqn.roles.parameter_server import ParameterServer


def test_pull_if_newer_only_returns_newer_versions():
    ps = ParameterServer()
    assert ps.pull_if_newer(-1) == (None, -1)
    ps.publish({"w": 1}, 0)
    assert ps.pull_if_newer(-1) == ({"w": 1}, 0)
    assert ps.pull_if_newer(0) == (None, 0)
    ps.publish({"w": 2}, 10)
    assert ps.pull_if_newer(0) == ({"w": 2}, 10)
    assert ps.version() == 10


def test_older_publication_is_ignored():
    ps = ParameterServer()
    ps.publish("new", 20)
    ps.publish("old", 10)
    assert ps.pull_if_newer(-1) == ("new", 20)
