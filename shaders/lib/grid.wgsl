// Linear invocation index for dispatches laid out by src/kernels/dispatch.ts
// grid(): 2-D once the workgroup count passes the per-dimension limit.
fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid;
}
