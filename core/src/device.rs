//! Where a model runs and in what precision: the one parser of `--device` / `device`
//! and `--dtype` / `dtype` that the server, the trainer and the benchmarks share.

use candle_core::{DType, Device};

/// A device or dtype name that cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device {0:?}: use cpu or cuda:N")]
    Unknown(String),
    #[error("device {0:?}: cuda:N with N a number")]
    Index(String),
    #[error("device {0:?}: this build has no CUDA support (build with --features cuda)")]
    NoCuda(String),
    #[error("device {name:?}: {source}")]
    Cuda {
        name: String,
        source: candle_core::Error,
    },
    #[error("dtype {0:?}: use auto, f32 or bf16")]
    Dtype(String),
}

/// `cpu`, or `cuda:N` (with the `cuda` feature; the GPU is opened here).
pub fn parse(name: &str) -> Result<Device, DeviceError> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let Some(index) = name.strip_prefix("cuda:") else {
        return Err(DeviceError::Unknown(name.to_string()));
    };
    let index: usize = index
        .parse()
        .map_err(|_| DeviceError::Index(name.to_string()))?;
    if !cuda_built() {
        return Err(DeviceError::NoCuda(name.to_string()));
    }
    Device::new_cuda(index).map_err(|source| DeviceError::Cuda {
        name: name.to_string(),
        source,
    })
}

/// Whether this build can open a GPU (candle's `cuda` feature).
pub fn cuda_built() -> bool {
    candle_core::utils::cuda_is_available()
}

/// The default device's name (`cpu`), for settings that record a device only when it
/// is not the default (`#[serde(default = …, skip_serializing_if = …)]`).
pub fn cpu_name() -> String {
    "cpu".into()
}

/// Whether `name` is [`cpu_name`].
pub fn is_cpu_name(name: &str) -> bool {
    name == "cpu"
}

/// Whether `name` names a GPU (`cuda:N`), without opening it.
pub fn names_gpu(name: &str) -> bool {
    name.starts_with("cuda:")
}

/// `f32`, `bf16`, or `auto`: BF16 on a GPU (its tensor cores; candle's CUDA matmuls
/// accumulate in F32), F32 on the CPU (where candle's BF16 kernels are slower than F32
/// and the packed forward is F32).
pub fn dtype(name: &str, device: &Device) -> Result<DType, DeviceError> {
    match name {
        "auto" if device.is_cuda() => Ok(DType::BF16),
        "auto" | "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        other => Err(DeviceError::Dtype(other.to_string())),
    }
}

/// Whether `name` is a dtype [`dtype`] takes, without a device: settings are checked
/// before one is opened (the server's `dtype`). The names live in [`dtype`] alone.
pub fn check_dtype(name: &str) -> Result<(), DeviceError> {
    dtype(name, &Device::Cpu).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_or_refused_by_name() {
        assert!(parse("cpu").unwrap().is_cpu());
        assert!(matches!(parse("gpu"), Err(DeviceError::Unknown(n)) if n == "gpu"));
        assert!(matches!(parse("cuda:x"), Err(DeviceError::Index(_))));
        if !cuda_built() {
            let err = parse("cuda:0").unwrap_err();
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
        assert_eq!(dtype("auto", &Device::Cpu).unwrap(), DType::F32);
        assert_eq!(dtype("bf16", &Device::Cpu).unwrap(), DType::BF16);
        assert_eq!(dtype("f32", &Device::Cpu).unwrap(), DType::F32);
        assert!(
            dtype("fp8", &Device::Cpu)
                .unwrap_err()
                .to_string()
                .contains("fp8")
        );
        assert!(names_gpu("cuda:1") && !names_gpu("cpu"));
    }
}
