"""Neural radiance fields: scenes and rays, sampler, fields, rendering, distillation, training, evaluation."""
