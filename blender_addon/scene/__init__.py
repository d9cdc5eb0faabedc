"""Scene building: everything that touches ``bpy`` data for a capture."""
