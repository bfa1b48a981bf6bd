"""The engine: one pass of the pipeline, the state store and its codec, and the renderer."""
