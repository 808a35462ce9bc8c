"""The app layer of intern-transfer (Hydra): Trainers from config groups, for its app and intern-bench's."""
