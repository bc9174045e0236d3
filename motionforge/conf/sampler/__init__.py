"""Config group 'sampler': YAML presets; registered classes add their options through the ConfigStore."""
