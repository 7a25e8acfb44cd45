//! Lowering of specialised helper calls (see [`crate::specialise`]).
//!
//! * [`CallSpec::ArrayLookup`] becomes inline code, Linux's
//!   `array_map_gen_lookup`: `index = load32(r2); r0 = index < max_entries ?
//!   base + index * elem_size : 0`, with a `select` (no branch, and no pointer
//!   past the array is ever formed on either path of the comparison).
//! * [`CallSpec::Direct`] becomes one native call of the function with the
//!   argument registers it takes (r1 replaced by the bound constant if any):
//!   no trampoline, no `call_index` store, no `status` test afterwards (a
//!   direct function cannot stop the program).
//!
//! The generic path (trampoline by helper-table slot, `status` tested after
//! the call) stays in `translate.rs`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Signature, Value};
use cranelift_frontend::FunctionBuilder;

use crate::specialise::CallSpec;

/// Emit the specialised call `spec` with argument registers `args` (r1–r5);
/// returns the value of r0.
pub(super) fn lower_special(
    b: &mut FunctionBuilder<'_>,
    spec: &CallSpec,
    args: [Value; 5],
) -> Value {
    match *spec {
        CallSpec::ArrayLookup {
            base,
            elem_size,
            max_entries,
        } => {
            // The key is on the program's stack (or in its map values): valid
            // memory, but not necessarily 4-byte aligned.
            let index = b
                .ins()
                .uload32(MemFlagsData::new().with_notrap(), args[1], 0);
            let inside = b
                .ins()
                .icmp_imm_u(IntCC::UnsignedLessThan, index, max_entries as i64);
            let off = if elem_size.is_power_of_two() {
                b.ins().ishl_imm_u(index, elem_size.trailing_zeros() as i64)
            } else {
                b.ins().imul_imm_u(index, elem_size as i64)
            };
            let p = b.ins().iadd_imm_u(off, base as i64);
            let null = b.ins().iconst(I64, 0);
            b.ins().select(inside, p, null)
        }
        CallSpec::Direct { func, bind } => {
            let n = func.arity();
            let mut sig = Signature::new(b.func.signature.call_conv);
            for _ in 0..n {
                sig.params.push(AbiParam::new(I64));
            }
            sig.returns.push(AbiParam::new(I64));
            let sig = b.import_signature(sig);
            let mut a: Vec<Value> = args[..n].to_vec();
            if let (Some(v), Some(first)) = (bind, a.first_mut()) {
                *first = b.ins().iconst(I64, v as i64);
            }
            let f = b.ins().iconst(I64, func.addr() as i64);
            let call = b.ins().call_indirect(sig, f, &a);
            b.inst_results(call)[0]
        }
    }
}
