"""The CDKTF stacks: one `PipelineStack` per environment, composed from `modules/`."""
