"""Developer tools (the model-zoo sweep and its docs table); not part of the package."""
