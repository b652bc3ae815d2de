"""The training framework of the three stages: run start and folder, checkpoint sets, loop helpers, the NaN policy,
run logs and the per-epoch FVD."""
