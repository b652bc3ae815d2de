# Names `vulture --min-confidence 80` reports as unused although they are used; one reason per entry.
# (Not a module of the project: .ci/run passes this file to vulture beside the repository.)

worker_id  # data.loader.seed_worker(worker_id): the signature DataLoader's worker_init_fn is called with
no_weights  # tests/test_eval.py: a pytest fixture requested by name for its side effect (no weights files)
random_vgg  # tests/test_eval.py: a pytest fixture requested by name for its side effect (random VGG allowed)
