# bpf_object(NAME SOURCE [HEADERS h...])
# Compiles SOURCE with clang for the BPF target, generates its skeleton with
# `bpftool gen skeleton`, and defines the INTERFACE target NAME_skel that puts the
# skeleton header (NAME.skel.h) on the include path. Listed headers are dependencies.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE BPF_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT BPF_MULTIARCH)
  set(BPF_MULTIARCH "${CMAKE_LIBRARY_ARCHITECTURE}")
endif()

function(bpf_object name source)
  cmake_parse_arguments(BPF "" "" "HEADERS" ${ARGN})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${source})
  set(deps)
  foreach(h ${BPF_HEADERS})
    list(APPEND deps ${CMAKE_CURRENT_SOURCE_DIR}/${h})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -O2 -g -target bpf -mcpu=v3 -Wall -Werror
            -D__TARGET_ARCH_x86 -I${CMAKE_CURRENT_SOURCE_DIR}
            -I/usr/include/${BPF_MULTIARCH} -c ${src} -o ${obj}
    DEPENDS ${src} ${deps}
    COMMENT "BPF ${name}: clang -target bpf"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${name}: bpftool gen skeleton"
    VERBATIM)
  add_custom_target(${name}_skel_gen ALL DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
