"""The pipeline that joins the stages: batch transcription now; the live server later."""
