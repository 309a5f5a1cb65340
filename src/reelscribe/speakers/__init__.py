"""Who speaks when: speaker diarization backends behind one small protocol."""
