"""The animation skeleton: a compact humanoid from the scaled OpenSim model and its IK motion.

Tool layer (after kinematics). ``humanoid`` defines the bones every other part agrees on
(the Blender add-on's animation armature, retargeting, foot contacts, export).
"""
