//! Every tests/bpf program on both engines, with the results tests/bpf/README.md predicts.

use std::path::PathBuf;
use std::sync::Arc;

use cordon_runtime::{Backend, CompiledProgram, Config, LoadedObject, Runtime};

fn bpf_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"))
}

fn runtime(backend: Backend) -> Runtime {
    Runtime::new(Config {
        backend,
        cpus: 4,
        ..Config::default()
    })
}

fn load(rt: &Runtime, name: &str) -> LoadedObject {
    let bytes = std::fs::read(bpf_dir().join(name)).unwrap();
    rt.load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn prog(o: &LoadedObject, name: &str) -> Arc<CompiledProgram> {
    o.program(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const BACKENDS: [Backend; 2] = [Backend::Interpreter, Backend::Jit];

fn zero(n: usize) -> Vec<u8> {
    vec![0u8; n]
}

#[test]
fn tc_mark() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "tc_mark.o");
        let p = prog(&o, "tc_mark");
        let mut pkt = zero(100);
        pkt[12] = 0x08;
        let r = p.run_skb(&pkt).unwrap();
        assert_eq!(r.retval, 0, "{b:?} TC_ACT_OK");
        // mark = len << 16 | protocol & 0xffff (protocol is big-endian 0x0800 -> 0x0008)
        assert_eq!(r.ctx_u32(8), Some(100 << 16 | 0x0008), "{b:?}");
        assert_eq!(r.ctx_u32(32), Some(100 % 8), "{b:?} priority");
        assert_eq!(r.ctx_u32(48), Some(2), "{b:?} cb[0] = ifindex + 1");
        let p = prog(&o, "cls_len");
        let r = p.run_skb(&pkt).unwrap();
        assert_eq!(r.ctx_u32(8), Some(100 ^ 0x5a5a), "{b:?}");
    }
}
