/** The `acr` values Latchkey issues, weakest first. */
export const ACR = {
  oneFactor: 'urn:latchkey:acr:1fa',
  pin: 'urn:latchkey:acr:pin',
  totp: 'urn:latchkey:acr:totp',
} as const;

export const ACR_VALUES: string[] = [ACR.oneFactor, ACR.pin, ACR.totp];

/** RFC 8176 `amr` values for the first step. */
export const AMR = { password: 'pwd', federated: 'fed' } as const;
