//! Network interfaces: the `ifreq` ioctls that bring the loopback up (chapter 2).

/// An `ifreq` naming `interface`, for the SIOC*IFFLAGS ioctls (see netdevice(7)).
fn interface_request(interface: &str) -> nix::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data (a name array and a union of integers and
    // addresses); all zeros is a valid value for every field.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= request.ifr_name.len() {
        return Err(nix::errno::Errno::EINVAL);
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// The flags of a network interface (`IFF_UP`, ...), via SIOCGIFFLAGS on `socket`.
pub fn interface_flags(socket: std::os::fd::RawFd, interface: &str) -> nix::Result<i16> {
    let mut request = interface_request(interface)?;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the ifreq we own,
    // which lives until the call returns.
    let result = unsafe { libc::ioctl(socket, libc::SIOCGIFFLAGS, &mut request) };
    nix::errno::Errno::result(result)?;
    // SAFETY: after a successful SIOCGIFFLAGS the union holds the flags.
    Ok(unsafe { request.ifr_ifru.ifru_flags })
}

/// Sets the flags of a network interface, via SIOCSIFFLAGS on `socket`.
pub fn set_interface_flags(
    socket: std::os::fd::RawFd,
    interface: &str,
    flags: i16,
) -> nix::Result<()> {
    let mut request = interface_request(interface)?;
    request.ifr_ifru.ifru_flags = flags;
    // SAFETY: SIOCSIFFLAGS only reads the ifreq we own, which lives until the call returns.
    let result = unsafe { libc::ioctl(socket, libc::SIOCSIFFLAGS, &request) };
    nix::errno::Errno::result(result).map(drop)
}
