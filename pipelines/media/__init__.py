"""Decoding and validating user media (images, audio, video frames) and rendering untrusted HTML, for the tasks."""
