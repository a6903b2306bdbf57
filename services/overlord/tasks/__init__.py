"""The overlord's tasks: model and validation, the queue, and the HTTP task runner."""
