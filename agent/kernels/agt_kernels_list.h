/*  Entry points, versions and reference inputs of the built-in kernels, for
    the registry (agt_kernels.c). A version is bumped whenever a kernel's
    result bytes may change for the same input. */
#ifndef AGT_KERNELS_LIST_H_INCLUDED
#define AGT_KERNELS_LIST_H_INCLUDED

#include "agt_kernel.h"

//  2.0.0: chains the raw 32-byte digest as the original demo does (1.0.0
//  chained its hex text)
#define K_ENCRYPTION_VERSION "2.0.0"
#define K_ENCRYPTION_REFERENCE "{\"data\":\"p2c2r benchmark\",\"iterations\":50000}"
agt_kernel_fn k_encryption_run;

#define K_COMPRESSION_VERSION "1.0.0"
#define K_COMPRESSION_REFERENCE "{\"data\":\"p2c2r benchmark \",\"repeat\":200000,\"level\":6}"
agt_kernel_fn k_compression_run;

#define K_DIALOGUE_VERSION "1.0.0"
#define K_DIALOGUE_REFERENCE "{\"player_input\":\"Hello there, do you have any quest or work for me? I need gold.\",\"npc_name\":\"Aldric\",\"personality\":\"friendly\",\"context\":\"tavern\"}"
agt_kernel_fn k_dialogue_run;

#define K_PATHFINDING_VERSION "1.0.0"
#define K_PATHFINDING_REFERENCE "{\"grid_size\":[512,512],\"start\":[0,0],\"goal\":[511,511],\"random_obstacles\":0.3,\"seed\":1,\"algorithm\":\"dijkstra\"}"
agt_kernel_fn k_pathfinding_run;

#define K_PROCEDURAL_VERSION "1.0.0"
#define K_PROCEDURAL_REFERENCE "{\"size\":[256,256],\"type\":\"cave\",\"seed\":42}"
agt_kernel_fn k_procedural_run;

//  1.1.0: the `tile` parameter (1.0.0 ignored it and rendered the whole frame)
#define K_RT_VERSION "1.1.0"
#define K_RT_REFLECTIONS_REFERENCE "{\"resolution\":[256,192],\"bounces\":3,\"lights\":2,\"samples_per_pixel\":1}"
#define K_RT_SHADOWS_REFERENCE "{\"resolution\":[256,192],\"lights\":2,\"samples_per_pixel\":4}"
#define K_RT_GI_REFERENCE "{\"resolution\":[128,96],\"bounces\":3,\"lights\":1,\"samples_per_pixel\":8}"
agt_kernel_fn k_rt_reflections_run;
agt_kernel_fn k_rt_shadows_run;
agt_kernel_fn k_rt_gi_run;

#define K_RIGID_BODY_VERSION "1.0.0"
#define K_RIGID_BODY_REFERENCE "{\"num_objects\":100,\"simulation_steps\":1000,\"dt\":0.01,\"seed\":1}"
agt_kernel_fn k_rigid_body_run;

#define K_CLOTH_VERSION "1.0.0"
#define K_CLOTH_REFERENCE "{\"grid_size\":[32,32],\"timesteps\":150,\"iterations\":10}"
agt_kernel_fn k_cloth_run;

#define K_FLUID_VERSION "1.0.0"
#define K_FLUID_REFERENCE "{\"grid_size\":[24,24,24],\"iterations\":20}"
agt_kernel_fn k_fluid_run;

#define K_DESTRUCTION_VERSION "1.0.0"
#define K_DESTRUCTION_REFERENCE "{\"complexity\":16,\"fracture_depth\":3,\"resolution\":64,\"seed\":1}"
agt_kernel_fn k_destruction_run;

//  The reference input of frame_upscale needs an image: `p2c2r-agent bench`
//  gives it a generated PNG of 480x270 as payload
#define K_UPSCALE_VERSION "1.0.0"
#define K_UPSCALE_REFERENCE "{\"output_res\":[960,540],\"method\":\"lanczos\"}"
agt_kernel_fn k_upscale_run;

#endif
