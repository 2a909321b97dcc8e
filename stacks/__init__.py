"""The CDK Terrain (cdktn) stacks: one `PipelineStack` per environment, composed from `modules/`."""
