"""bpy-free core of the add-on: axis conventions, camera conversion, rig maths,
mesh readers, capture discovery and OpenSim body transforms.

Nothing here imports ``bpy``; tests run it without Blender (Bonsai's pattern).
"""
