import mujoco
import numpy as np
import pytest

from ogi.envs.config import SimConfig
from ogi.envs.scene import build_scene_model
from ogi.robots import STAND_KEY, get_robot, robot_names


@pytest.mark.parametrize("name", robot_names())
def test_standing_feet_carry_the_robots_weight(name):
    """Touch zones enclose the feet of every robot: standing, the foot sensors sum to the weight."""
    robot = get_robot(name)
    model = build_scene_model(robot, SimConfig())
    data = mujoco.MjData(model)
    key = model.key(STAND_KEY).id
    mujoco.mj_resetDataKeyframe(model, data, key)
    for _ in range(1000):
        mujoco.mj_step(model, data)
    feet = np.array([data.sensor(f"{f}_touch").data[0] for f in robot.foot_sites])
    weight = model.body_subtreemass[model.body(robot.base_body).id] * -model.opt.gravity[2]
    assert (feet > 0).all()
    assert feet.sum() == pytest.approx(weight, rel=0.05)
    # nothing but the feet touches the ground
    for body in (*robot.termination_contact_bodies, *robot.undesired_contact_bodies):
        assert data.sensor(f"{body}_contact").data[0] == 0
