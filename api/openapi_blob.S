/*
 * api/openapi_blob.S - embeds openapi/openapi.yaml in the binary.
 *
 * The spec is the contract; shipping it inside the executable means the
 * server always serves the spec it was built with, and never reads a file
 * per request. The bytes are followed by a NUL so they form a C string.
 */
    .section .rodata
    .global api_openapi_yaml
    .type api_openapi_yaml, @object
api_openapi_yaml:
    .incbin "openapi/openapi.yaml"
    .byte 0
    .global api_openapi_yaml_end
api_openapi_yaml_end:
    .section .note.GNU-stack,"",@progbits
