//! The static-ELF check: the tests' rootfs has no libc, so the busybox it is made from
//! must not name a dynamic loader (see elf(5)).

/// Whether an ELF binary is static: it has no PT_INTERP program header naming a
/// dynamic loader (see elf(5)). If the headers are unreadable, looks for a loader's path.
pub(super) fn is_static_elf(elf: &[u8]) -> Result<bool, &'static str> {
    if !elf.starts_with(b"\x7fELF") {
        return Err("is not an ELF binary");
    }
    let has_interp = elf_has_interp(elf).unwrap_or_else(|| {
        let loaders: [&[u8]; 2] = [b"/lib64/ld-linux", b"/lib/ld-linux"];
        loaders
            .iter()
            .any(|loader| elf.windows(loader.len()).any(|w| w == *loader))
    });
    Ok(!has_interp)
}

/// Walks the program headers; `None` when the ELF header is truncated or unknown.
fn elf_has_interp(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u64 = 3;
    let wide = match elf.get(4)? {
        1 => false, // ELFCLASS32
        2 => true,  // ELFCLASS64
        _ => return None,
    };
    let little = match elf.get(5)? {
        1 => true,  // ELFDATA2LSB
        2 => false, // ELFDATA2MSB
        _ => return None,
    };
    let field = |offset: u64, size: usize| read_uint(elf, offset, size, little);
    // e_phoff, e_phentsize and e_phnum sit at different offsets in the two classes.
    let (phoff, phentsize, phnum) = if wide {
        (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?)
    } else {
        (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?)
    };
    for index in 0..phnum {
        let header = phoff.checked_add(index.checked_mul(phentsize)?)?;
        if field(header, 4)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

/// Reads an unsigned integer of `size` bytes at `offset`, in the file's byte order.
fn read_uint(bytes: &[u8], offset: u64, size: usize, little: bool) -> Option<u64> {
    let start = usize::try_from(offset).ok()?;
    let slice = bytes.get(start..start.checked_add(size)?)?;
    let push = |value: u64, byte: &u8| (value << 8) | u64::from(*byte);
    Some(if little {
        slice.iter().rev().fold(0, push)
    } else {
        slice.iter().fold(0, push)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header and program headers of the given types.
    fn elf(wide: bool, little: bool, types: &[u32]) -> Vec<u8> {
        let (header, entry) = if wide { (64, 56) } else { (52, 32) };
        let mut elf = vec![0u8; header + entry * types.len()];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = if wide { 2 } else { 1 };
        elf[5] = if little { 1 } else { 2 };
        let mut put = |offset: usize, size: usize, value: u64| {
            let bytes = value.to_be_bytes();
            let mut field = bytes[8 - size..].to_vec();
            if little {
                field.reverse();
            }
            elf[offset..offset + size].copy_from_slice(&field);
        };
        let (phoff, phentsize, phnum) = if wide {
            (0x20, 0x36, 0x38)
        } else {
            (0x1c, 0x2a, 0x2c)
        };
        put(phoff, if wide { 8 } else { 4 }, header as u64);
        put(phentsize, 2, entry as u64);
        put(phnum, 2, types.len() as u64);
        for (index, &kind) in types.iter().enumerate() {
            put(header + index * entry, 4, u64::from(kind));
        }
        elf
    }

    const PT_LOAD: u32 = 1;
    const PT_INTERP: u32 = 3;

    #[test]
    fn elf_without_interp_is_static() {
        assert_eq!(
            is_static_elf(&elf(true, true, &[PT_LOAD, PT_LOAD])),
            Ok(true)
        );
        assert_eq!(is_static_elf(&elf(false, false, &[PT_LOAD])), Ok(true));
    }

    #[test]
    fn elf_with_interp_is_dynamic() {
        assert_eq!(
            is_static_elf(&elf(true, true, &[PT_LOAD, PT_INTERP])),
            Ok(false)
        );
        assert_eq!(
            is_static_elf(&elf(false, false, &[PT_INTERP, PT_LOAD])),
            Ok(false)
        );
    }

    #[test]
    fn truncated_elf_falls_back_to_the_loader_path() {
        let mut dynamic = elf(true, true, &[PT_INTERP]);
        dynamic.extend_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        dynamic[0x20] = 0xff; // e_phoff now points past the end
        assert_eq!(is_static_elf(&dynamic), Ok(false));
        assert_eq!(
            is_static_elf(&elf(true, true, &[PT_LOAD])[..0x30]),
            Ok(true)
        );
        assert_eq!(is_static_elf(b"#!/bin/sh\n"), Err("is not an ELF binary"));
    }
}
