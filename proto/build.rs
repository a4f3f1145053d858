//! Compiles `copl/v1/*.proto` with protox (pure Rust: no `protoc` to install) and
//! writes the encoded file descriptor set beside the generated code, for reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &["copl/v1/reward.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let fds = protox::compile(PROTOS, ["."])?;
    fs::write(out_dir.join("copl_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec, bounded before decoding (src/codec.rs).
        .codec_path("crate::codec::BoundedCodec")
        .compile_fds(fds)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
